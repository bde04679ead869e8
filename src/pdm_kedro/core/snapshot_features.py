"""Features of a snapshot table: rows without time order (one row per part or process run).

No window feature applies (a one-row "episode" makes every window statistic a copy of the reading
or a constant), so a snapshot row's features are:

- its readings as given (``<sensor>``);
- their z-scores per operating condition (``<sensor>__zscore``) only when the source scales
  sensors per condition: a z-score with one fleet-wide median and scale is a monotone copy of
  the reading and adds nothing to a tree model;
- one 0/1 column per level of every categorical column seen in train
  (``<column>__is_<level>``; a level unseen in train sets none of them);
- nothing that is constant on train (fitted once, listed in ``sensor_baselines["snapshot"]``).

numpy and stdlib only, like :mod:`pdm_kedro.core.window_features`: the same definition can run
on a device.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

ZSCORE_SUFFIX = "__zscore"


def level_name(column: str, level: str) -> str:
    """The feature name of one level of a categorical column (letters, digits, ``_`` only)."""
    return f"{_safe(column)}__is_{_safe(level)}"


def _safe(text: str) -> str:
    return re.sub(r"[^0-9A-Za-z_]+", "_", str(text)).strip("_") or "blank"


def candidate_names(
    sensors: Sequence[str], zscores: bool, levels: Mapping[str, Sequence[str]]
) -> list[str]:
    """Every snapshot feature before constant ones are dropped, in order."""
    names = list(sensors)
    if zscores:
        names += [f"{s}{ZSCORE_SUFFIX}" for s in sensors]
    for column, values in levels.items():
        names += [level_name(column, v) for v in values]
    return names


def snapshot_matrix(
    readings: np.ndarray,
    zscored: np.ndarray | None,
    categories: Mapping[str, np.ndarray],
    levels: Mapping[str, Sequence[str]],
) -> np.ndarray:
    """The candidate feature matrix (rows x :func:`candidate_names`).

    Args:
        readings: rows x sensors, as given.
        zscored: rows x sensors, z-scored per condition, or None (no z-score block).
        categories: column -> each row's level (text).
        levels: column -> the levels fitted on train, in order.
    """
    blocks = [np.asarray(readings, dtype=np.float64)]
    if zscored is not None:
        blocks.append(np.asarray(zscored, dtype=np.float64))
    for column, values in levels.items():
        row_levels = np.asarray(categories[column]).astype(str)
        blocks.append(
            np.column_stack([(row_levels == v).astype(np.float64) for v in values])
            if len(values)
            else np.empty((len(row_levels), 0))
        )
    return np.column_stack(blocks) if blocks else np.empty((0, 0))


def fit_snapshot_features(
    readings: np.ndarray,
    zscored: np.ndarray | None,
    categories: Mapping[str, np.ndarray],
    sensors: Sequence[str],
) -> dict[str, Any]:
    """Levels of every categorical column and the non-constant features, from the train rows.

    Returns ``{"levels": {column: [level, ...]}, "zscores": bool, "features": [names],
    "dropped_constant": [names]}``.
    """
    levels = {
        column: sorted({str(v) for v in np.asarray(values).astype(str)})
        for column, values in categories.items()
    }
    names = candidate_names(sensors, zscored is not None, levels)
    matrix = snapshot_matrix(readings, zscored, categories, levels)
    keep = []
    for j, name in enumerate(names):
        column = matrix[:, j]
        finite = column[np.isfinite(column)]
        if finite.size and np.ptp(finite) > 0:
            keep.append(name)
    return {
        "levels": levels,
        "zscores": zscored is not None,
        "features": keep,
        "dropped_constant": [n for n in names if n not in set(keep)],
    }


def snapshot_features(
    readings: np.ndarray,
    zscored: np.ndarray | None,
    categories: Mapping[str, np.ndarray],
    sensors: Sequence[str],
    fitted: Mapping[str, Any],
) -> np.ndarray:
    """Rows x ``fitted["features"]``: the snapshot features the train fit kept."""
    levels = fitted["levels"]
    names = candidate_names(sensors, bool(fitted["zscores"]), levels)
    matrix = snapshot_matrix(readings, zscored if fitted["zscores"] else None, categories, levels)
    index = {name: j for j, name in enumerate(names)}
    return matrix[:, [index[name] for name in fitted["features"]]]
