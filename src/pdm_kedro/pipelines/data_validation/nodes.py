"""Validate a machine's raw splits against the data contract; fail or quarantine bad rows."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd
import pandera.errors as pa_errors

from pdm_kedro import contract as c
from pdm_kedro.fleet import parse_machine

from .schemas import build_raw_schema

logger = logging.getLogger(__name__)


class DataValidationError(ValueError):
    """Raw data that breaks the contract, with machine, split, column, check and rows named."""


def _normalise_failure_cases(failure_cases: pd.DataFrame) -> pd.DataFrame:
    """Pandera's failure cases with the column each one is about and one row per failure.

    Frame-wide checks (timestamp order) are reported once per row against ``timestamp``
    instead of once per column; a missing column is reported against its own name.
    """
    cases = failure_cases.copy()
    cases["check"] = cases["check"].astype(str)
    frame_wide = cases["schema_context"].astype(str).eq("DataFrameSchema")
    missing = cases["check"].eq("column_in_dataframe")
    cases["column"] = cases["column"].astype(object)
    cases.loc[missing, "column"] = cases.loc[missing, "failure_case"]
    cases.loc[frame_wide & ~missing, "column"] = c.TIMESTAMP
    cases["column"] = cases["column"].fillna("<dataframe>").astype(str)
    return cases.drop_duplicates(subset=["column", "check", "index"])


def _summarise_failures(
    cases: pd.DataFrame, frame: pd.DataFrame, example_rows: int
) -> list[dict[str, Any]]:
    """One entry per (column, check): how many rows fail and a few of them."""
    summary = []
    for (column, check), group in cases.groupby(["column", "check"], sort=True):
        rows = sorted({int(i) for i in group["index"].dropna()})
        entry: dict[str, Any] = {"column": column, "check": check, "rows": len(rows)}
        if rows:
            entry["example_rows"] = rows[:example_rows]
            shown = frame.loc[rows[:example_rows]]
            if column in frame.columns:
                entry["example_values"] = [str(v) for v in shown[column].tolist()]
        else:
            entry["scope"] = "column"
            entry["detail"] = (
                f"found dtype {frame[column].dtype}"
                if column in frame.columns
                else "column is missing"
            )
        summary.append(entry)
    return summary


def _describe(machine_id: str, split: str, failures: list[dict[str, Any]]) -> str:
    lines = [
        f"Machine {machine_id}, split {split} (dataset {machine_id}.raw_{split}) "
        "breaks the raw data contract:"
    ]
    for f in failures:
        if f.get("scope") == "column":
            lines.append(f"  - column {f['column']!r}: check {f['check']} failed: {f['detail']}")
        else:
            lines.append(
                f"  - column {f['column']!r}: check {f['check']} failed on {f['rows']} rows, "
                f"e.g. rows {f['example_rows']} with values {f.get('example_values', [])}"
            )
    return "\n".join(lines)


def fit_plausibility_reference(
    raw_train: pd.DataFrame, machine: dict[str, Any], validation: dict[str, Any]
) -> dict[str, Any]:
    """Each sensor's training reference for the plausibility check: the median and a robust scale
    (1.4826 x MAD, floored by the configured ``noise`` and ``scale_floor_range_fraction`` of the
    physical range) of the train split's finite, in-range, non-tiny values.

    A value more than ``plausibility.max_scales`` scales from the median is orders of magnitude off
    (a unit mix-up, a corrupted page); the reference is robust to a few such values in train.
    """
    spec = parse_machine(machine)
    plausibility = validation["plausibility"]
    min_abs = float(plausibility["min_abs_nonzero"])
    floor_fraction = float(plausibility["scale_floor_range_fraction"])
    sensors: dict[str, dict[str, float]] = {}
    for sensor in spec.sensors:
        if sensor.name not in raw_train.columns:
            continue
        values = pd.to_numeric(raw_train[sensor.name], errors="coerce").to_numpy(np.float64)
        keep = (
            np.isfinite(values)
            & (values >= sensor.min)
            & (values <= sensor.max)
            & ((values == 0) | (np.abs(values) >= min_abs))
        )
        floor = max(float(sensor.noise or 0.0), floor_fraction * (sensor.max - sensor.min))
        if not keep.any():
            continue  # nothing plausible to refer to: the range and null checks report the rows
        median = float(np.median(values[keep]))
        mad = float(np.median(np.abs(values[keep] - median)))
        sensors[sensor.name] = {"median": median, "scale": max(1.4826 * mad, floor)}
    return {"machine_id": spec.machine_id, "split": "train", "sensors": sensors}


def _missing_token_columns(
    frame: pd.DataFrame, sensors: list[str], tokens: list[str]
) -> tuple[pd.DataFrame, dict[str, int]]:
    """Text sensor columns whose only non-numbers are missing-value tokens (at least one), as
    numbers with NaN for the tokens; other text columns are left for the dtype check."""
    counts: dict[str, int] = {}
    token_set = {t.strip().lower() for t in tokens}
    for name in sensors:
        if name not in frame.columns or not (
            pd.api.types.is_string_dtype(frame[name]) or pd.api.types.is_object_dtype(frame[name])
        ):
            continue
        text = frame[name].astype("string").str.strip()
        is_token = text.str.lower().isin(token_set).fillna(False).astype(bool)
        if not is_token.any():
            continue  # numbers stored as text: the dtype check names the column
        parsed = pd.to_numeric(frame[name].where(~is_token), errors="coerce")
        if (parsed.isna() & frame[name].notna() & ~is_token).any():
            continue  # other text too: the dtype check names the column
        frame[name] = parsed.astype(np.float64)
        counts[name] = int(is_token.sum())
    return frame, counts


def _normalise(
    raw: pd.DataFrame, spec: Any, validation: dict[str, Any]
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """What the contract allows, made canonical (counted, never silent): time-zone-aware
    timestamps to naive UTC, missing-value tokens in text sensor columns to NaN, rows out of
    time order within an episode sorted (episodes keep their order). Keeps the input row numbers
    as the index so errors quote them."""
    frame = raw.reset_index(drop=True)
    notes: dict[str, Any] = {"timezone_converted_rows": 0, "rows_reordered": 0}
    if c.TIMESTAMP in frame.columns and isinstance(frame[c.TIMESTAMP].dtype, pd.DatetimeTZDtype):
        notes["timezone_converted_rows"] = int(frame[c.TIMESTAMP].notna().sum())
        notes["timezone"] = str(frame[c.TIMESTAMP].dt.tz)
        frame[c.TIMESTAMP] = frame[c.TIMESTAMP].dt.tz_convert("UTC").dt.tz_localize(None)
    frame, tokens = _missing_token_columns(
        frame, spec.sensor_names, list(validation["missing_tokens"])
    )
    notes["missing_tokens"] = tokens
    if {c.TIMESTAMP, c.EPISODE} <= set(frame.columns) and pd.api.types.is_datetime64_any_dtype(
        frame[c.TIMESTAMP]
    ):
        episodes = frame[c.EPISODE]
        running_max = frame.groupby(episodes, sort=False)[c.TIMESTAMP].cummax()
        previous_max = running_max.groupby(episodes, sort=False).shift()
        backwards = previous_max.notna() & (frame[c.TIMESTAMP] < previous_max)
        if backwards.any():
            order = pd.DataFrame(
                {"episode": frame.groupby(episodes, sort=False).ngroup(), "t": frame[c.TIMESTAMP]}
            ).sort_values(["episode", "t"], kind="stable")
            frame = frame.loc[order.index]
            notes["rows_reordered"] = int(backwards.sum())
    return frame, notes


def validate_readings(
    raw: pd.DataFrame,
    machine: dict[str, Any],
    validation: dict[str, Any],
    split: str,
    reference: dict[str, Any] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """Check one raw split with the machine's Pandera schema (lazily: all failures at once).

    First what the contract allows is made canonical and counted (``_normalise``: time zones to
    UTC, missing-value tokens, rows sorted within an episode). Column-level failures (missing
    column, wrong dtype) and an empty split always raise. Row-level failures (including values
    implausible against ``reference``, the train split's medians and scales; the split itself when
    not given) raise when the machine's ``on_invalid`` is ``fail``; with ``quarantine`` the bad
    rows go to the quarantine output with the checks they broke, and the run continues.

    Returns:
        valid rows, quarantined rows (same columns plus ``quarantine_reason``), and a report
        with ``rows_in == rows_valid + rows_quarantined``.
    """
    spec = parse_machine(machine)
    example_rows = int(validation["example_rows"])
    if raw.empty:
        raise DataValidationError(
            f"Machine {spec.machine_id}, split {split} (dataset {spec.machine_id}.raw_{split}) "
            "is empty (no rows, or a header-only file): there are no rows to validate."
        )
    frame, notes = _normalise(raw, spec, validation)
    if reference is None:
        reference = fit_plausibility_reference(frame, machine, validation)
    schema = build_raw_schema(
        spec, int(validation["max_null_run"]), reference, validation["plausibility"]
    )
    failures: list[dict[str, Any]] = []
    bad_rows: dict[int, list[str]] = {}
    try:
        schema.validate(frame, lazy=True)
    except pa_errors.SchemaErrors as err:
        cases = _normalise_failure_cases(err.failure_cases)
        failures = _summarise_failures(cases, frame, example_rows)
        column_level = [f for f in failures if f.get("scope") == "column"]
        if column_level or spec.on_invalid == "fail":
            raise DataValidationError(_describe(spec.machine_id, split, failures)) from None
        for row, column, check in cases[["index", "column", "check"]].itertuples(index=False):
            if pd.notna(row):
                bad_rows.setdefault(int(row), []).append(f"{column}:{check}")

    bad_index = pd.Index([i for i in frame.index if i in bad_rows], dtype="int64")
    valid = frame.drop(index=bad_index).reset_index(drop=True)
    quarantined = frame.loc[bad_index].copy()
    quarantined[c.QUARANTINE_REASON] = ["; ".join(sorted(set(bad_rows[i]))) for i in bad_index]
    quarantined = quarantined.reset_index(drop=True)
    if len(valid) + len(quarantined) != len(frame):  # pragma: no cover - guards the invariant
        raise RuntimeError(f"{spec.machine_id}/{split}: rows lost during validation")
    if valid.empty:
        raise DataValidationError(
            f"Machine {spec.machine_id}, split {split}: every one of the {len(frame)} rows failed "
            f"validation:\n{_describe(spec.machine_id, split, failures)}"
        )
    if len(quarantined):
        logger.warning(
            "%s/%s: quarantined %d of %d rows (%s)",
            spec.machine_id,
            split,
            len(quarantined),
            len(frame),
            ", ".join(f"{f['column']}:{f['check']}={f['rows']}" for f in failures),
        )
    if notes["rows_reordered"]:
        logger.info(
            "%s/%s: %d rows were out of time order within their episode; sorted",
            spec.machine_id,
            split,
            notes["rows_reordered"],
        )
    report = {
        "split": split,
        "rows_in": len(frame),
        "rows_valid": len(valid),
        "rows_quarantined": len(quarantined),
        "failures": failures,
        "rows_reordered": notes["rows_reordered"],
        "timezone_converted_rows": notes["timezone_converted_rows"],
        "missing_tokens": notes["missing_tokens"],
        "missing_values": {
            s.name: int(frame[s.name].isna().sum()) for s in spec.sensors if s.name in frame
        },
    }
    return valid, quarantined, report


def combine_validation_reports(
    machine: dict[str, Any], train: dict, val: dict, test: dict
) -> dict[str, Any]:
    """The machine's validation report: per split counts and failures, and the totals."""
    spec = parse_machine(machine)
    splits = {r["split"]: r for r in (train, val, test)}
    totals = {
        key: sum(int(r.get(key, 0)) for r in splits.values())
        for key in (
            "rows_in",
            "rows_valid",
            "rows_quarantined",
            "rows_reordered",
            "timezone_converted_rows",
        )
    }
    return {
        "machine_id": spec.machine_id,
        "on_invalid": spec.on_invalid,
        "status": "clean" if totals["rows_quarantined"] == 0 else "quarantined_rows",
        **totals,
        "splits": splits,
    }


def gather_partitions(partitions: dict[str, Any]) -> pd.DataFrame:
    """One frame from a partitioned dataset's partitions (loaded in partition-name order, i.e.
    by day for ``<day>.parquet``), in time order within each episode."""
    if not partitions:
        raise DataValidationError(
            "The incoming batch is empty: no partition under 01_raw/<machine>/incoming/."
        )
    frames = []
    for name, load in sorted(partitions.items()):
        part = load() if callable(load) else load
        if part.empty:
            raise DataValidationError(
                f"Incoming partition {name!r} (01_raw/<machine>/incoming/) has no rows (a "
                "header-only or empty file): remove it or fill it."
            )
        frames.append(part)
    frame = pd.concat(frames, ignore_index=True)
    return frame.sort_values([c.EPISODE, c.TIMESTAMP], kind="stable").reset_index(drop=True)
