"""Pandera schemas of the raw data contract, built from a machine's sensor config."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pandera.pandas as pa

from pdm_kedro import contract as c
from pdm_kedro.fleet import MachineSpec


def _is_datetime(series: pd.Series) -> bool:
    return pd.api.types.is_datetime64_any_dtype(series)


def _is_integer(series: pd.Series) -> bool:
    return pd.api.types.is_integer_dtype(series)


def _is_numeric(series: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)


def _is_text(series: pd.Series) -> bool:
    return pd.api.types.is_string_dtype(series) or pd.api.types.is_object_dtype(series)


def _finite(series: pd.Series) -> pd.Series:
    values = pd.to_numeric(series, errors="coerce")
    return ~np.isinf(values) | values.isna()


def null_burst_mask(series: pd.Series, max_run: int) -> pd.Series:
    """True for rows that sit in a run of more than ``max_run`` consecutive missing values."""
    missing = series.isna()
    run_id = (missing != missing.shift()).cumsum()
    run_length = missing.groupby(run_id).transform("size")
    return missing & (run_length > max_run)


def _in_range(lo: float, hi: float):
    def check(series: pd.Series) -> pd.Series:
        values = pd.to_numeric(series, errors="coerce")
        return values.isna() | ((values >= lo) & (values <= hi))

    return check


def _not_tiny(min_abs: float):
    """A non-zero value closer to 0 than ``min_abs`` is a corrupted float, not a reading."""

    def check(series: pd.Series) -> pd.Series:
        values = pd.to_numeric(series, errors="coerce").abs()
        return ~np.isfinite(values) | values.eq(0) | (values >= min_abs)

    return check


def _near_reference(median: float, scale: float, max_scales: float):
    """Within ``max_scales`` training scales of the training median (orders of magnitude off is a
    fault: a unit mix-up, a corrupted page, a truncated number far from the data); missing and
    infinite values are left to the null-run and finite checks."""

    def check(series: pd.Series) -> pd.Series:
        values = pd.to_numeric(series, errors="coerce")
        return ~np.isfinite(values) | ((values - median).abs() <= max_scales * scale)

    return check


def _timestamps_unique(df: pd.DataFrame) -> pd.Series:
    return ~df.duplicated(subset=[c.EPISODE, c.TIMESTAMP], keep="first")


def _timestamps_increasing(df: pd.DataFrame) -> pd.Series:
    previous_max = df.groupby(c.EPISODE, sort=False)[c.TIMESTAMP].cummax()
    previous_max = previous_max.groupby(df[c.EPISODE], sort=False).shift()
    return previous_max.isna() | (df[c.TIMESTAMP] >= previous_max)


def _plausibility_checks(
    ref: dict[str, float] | None, plausibility: dict[str, Any] | None
) -> list[pa.Check]:
    if plausibility is None:
        return []
    min_abs = float(plausibility["min_abs_nonzero"])
    checks = [pa.Check(_not_tiny(min_abs), name=f"plausible_magnitude(|x|=0 or >= {min_abs:g})")]
    if ref is not None:
        max_scales = float(plausibility["max_scales"])
        checks.append(
            pa.Check(
                _near_reference(float(ref["median"]), float(ref["scale"]), max_scales),
                name=(
                    f"within_{max_scales:g}_train_scales_of_train_median"
                    f"[median {ref['median']:.6g}, scale {ref['scale']:.3g}]"
                ),
            )
        )
    return checks


def build_raw_schema(
    spec: MachineSpec,
    max_null_run: int,
    reference: dict[str, Any] | None = None,
    plausibility: dict[str, Any] | None = None,
) -> pa.DataFrameSchema:
    """Schema of one machine's raw split: the generic data contract plus the sensor config.

    Column-level failures (missing column, wrong dtype) can't be fixed by dropping rows; row-level
    failures (range, implausible magnitude, inf, null bursts, timestamp order, label domains) name
    the rows. ``reference`` (``fit_plausibility_reference``) and ``plausibility`` (``max_scales``,
    ``min_abs_nonzero``) add the checks against the training reference.
    """
    sensor_refs = (reference or {}).get("sensors", {})
    columns: dict[str, pa.Column] = {
        c.TIMESTAMP: pa.Column(
            checks=[pa.Check(_is_datetime, name="dtype_is_datetime", element_wise=False)],
            nullable=False,
        ),
        c.EPISODE: pa.Column(
            checks=[pa.Check(_is_integer, name="dtype_is_integer")],
            nullable=False,
        ),
        c.REGIME: pa.Column(
            checks=[pa.Check(_is_text, name="dtype_is_text")], nullable=False, required=False
        ),
        c.RUL: pa.Column(
            checks=[
                pa.Check(_is_numeric, name="dtype_is_numeric"),
                pa.Check.greater_than_or_equal_to(0),
            ],
            nullable=False,
            required=False,
        ),
        c.FAILURE_WITHIN_HORIZON: pa.Column(
            checks=[pa.Check.isin([0, 1])], nullable=False, required=False
        ),
        c.ANOMALY: pa.Column(checks=[pa.Check.isin([0, 1])], nullable=False, required=False),
    }
    for sensor in spec.sensors:
        columns[sensor.name] = pa.Column(
            checks=[
                pa.Check(_is_numeric, name="dtype_is_numeric"),
                pa.Check(_finite, name="finite", ignore_na=False),
                pa.Check(
                    _in_range(sensor.min, sensor.max),
                    name=f"in_physical_range[{sensor.min}, {sensor.max}] {sensor.unit}",
                ),
                *_plausibility_checks(sensor_refs.get(sensor.name), plausibility),
                pa.Check(
                    lambda s, n=max_null_run: ~null_burst_mask(s, n),
                    name=f"no_null_run_longer_than_{max_null_run}",
                    ignore_na=False,
                ),
            ],
            nullable=True,
        )
    return pa.DataFrameSchema(
        columns,
        checks=[
            pa.Check(_timestamps_unique, name="timestamp_unique_within_episode"),
            pa.Check(_timestamps_increasing, name="timestamp_increasing_within_episode"),
        ],
        strict=False,
        coerce=False,
        name=f"raw_{spec.machine_id}",
    )
