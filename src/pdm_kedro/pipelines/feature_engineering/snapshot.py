"""The snapshot branch of the feature stage: tables whose rows have no time order.

A file source with ``columns.time_kind: none`` (one row per part or process run) gets no window
features: :mod:`pdm_kedro.core.snapshot_features` defines what it gets instead (readings,
per-condition z-scores where the source scales per condition, one 0/1 column per categorical
level, nothing constant on train).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from pdm_kedro import contract as c
from pdm_kedro.core.snapshot_features import fit_snapshot_features, snapshot_features

CATEGORY_PREFIX = "category__"  # the raw column of a categorical source column (data_ingestion)


def is_snapshot_source(machine: dict[str, Any]) -> bool:
    """Whether the machine's rows are snapshots: a file source with ``time_kind: none``."""
    source = dict(machine.get("source") or {})
    columns = dict(source.get("columns") or {})
    return source.get("type") == "file" and columns.get("time_kind") == "none"


def categorical_columns(machine: dict[str, Any]) -> dict[str, str]:
    """Feature prefix -> raw column of every categorical input: ``columns.categorical`` and a
    given ``columns.regime`` (a text label: one-hot, never an ordinal code)."""
    columns = dict(dict(machine.get("source") or {}).get("columns") or {})
    out = {name: f"{CATEGORY_PREFIX}{name}" for name in columns.get("categorical") or []}
    if columns.get("regime"):
        out[c.REGIME] = c.REGIME
    return out


def _categories(frame: pd.DataFrame, machine: dict[str, Any]) -> dict[str, np.ndarray]:
    missing = [raw for raw in categorical_columns(machine).values() if raw not in frame.columns]
    if missing:
        raise ValueError(
            f"{machine.get('machine_id')}: snapshot features need the categorical columns "
            f"{missing}, absent from the validated readings"
        )
    return {
        name: frame[raw].astype(str).to_numpy()
        for name, raw in categorical_columns(machine).items()
    }


def fit_snapshot_block(
    train: pd.DataFrame, zscored: pd.DataFrame | None, machine: dict[str, Any], sensors: list[str]
) -> dict[str, Any]:
    """``sensor_baselines["snapshot"]``: categorical levels and the features kept (train only)."""
    fitted = fit_snapshot_features(
        train[sensors].to_numpy(dtype=np.float64),
        None if zscored is None else zscored[sensors].to_numpy(dtype=np.float64),
        _categories(train, machine),
        sensors,
    )
    return {**fitted, "categorical": categorical_columns(machine)}


def build_snapshot_features(
    validated: pd.DataFrame,
    zscored: pd.DataFrame | None,
    baselines: dict[str, Any],
    machine: dict[str, Any],
    sensors: list[str],
) -> pd.DataFrame:
    """Id and label columns, then the snapshot features of every row (row order kept)."""
    fitted = baselines["snapshot"]
    matrix = snapshot_features(
        validated[sensors].to_numpy(dtype=np.float64),
        None if zscored is None else zscored[sensors].to_numpy(dtype=np.float64),
        _categories(validated, machine),
        sensors,
        fitted,
    )
    keep = [col for col in (*c.ID_COLUMNS, *c.LABEL_COLUMNS) if col in validated.columns]
    out = validated[keep].reset_index(drop=True)
    features = pd.DataFrame(matrix, columns=list(fitted["features"]), index=out.index)
    return pd.concat([out, features], axis=1)
