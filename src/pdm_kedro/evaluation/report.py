"""The family metrics document every model family writes (see the artefact contract)."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd


def metric_rows(
    values: Mapping[str, float],
    baselines: Mapping[str, float],
    baseline_name: str,
    ceilings: Mapping[str, float] | None = None,
) -> list[dict[str, Any]]:
    """``[{"metric", "value", "baseline", "baseline_name"}]`` for every metric in ``values``,
    with ``"ceiling"`` too when ``ceilings`` is given (null for a metric it lacks)."""
    rows = [
        {
            "metric": name,
            "value": _finite_or_none(value),
            "baseline": _finite_or_none(baselines.get(name)),
            "baseline_name": baseline_name,
        }
        for name, value in values.items()
    ]
    if ceilings is not None:
        for row in rows:
            row["ceiling"] = _finite_or_none(ceilings.get(row["metric"]))
    return rows


def with_event_rows(
    rows: list[dict[str, Any]], events: Mapping[str, Any], baseline_name: str
) -> list[dict[str, Any]]:
    """``rows`` plus one row per event metric of ``events`` (model and baseline summaries), and
    every row's bootstrap interval (``value_lo`` / ``value_hi``) where ``events`` has one."""
    model, baseline = events["model"]["summary"], events["baseline"]["summary"]
    extra = [
        {
            "metric": name,
            "value": _finite_or_none(model[name]),
            "baseline": _finite_or_none(baseline.get(name)),
            "baseline_name": baseline_name,
            **({"ceiling": None} if rows and "ceiling" in rows[0] else {}),
        }
        for name in model
    ]
    return with_intervals([*rows, *extra], events.get("intervals", {}))


def with_intervals(
    rows: list[dict[str, Any]], intervals: Mapping[str, Sequence[float | None]]
) -> list[dict[str, Any]]:
    """Every row with ``value_lo`` / ``value_hi`` from ``intervals`` (null where it has none)."""
    out = []
    for row in rows:
        lo, hi = intervals.get(row["metric"], (None, None))
        out.append({**row, "value_lo": _finite_or_none(lo), "value_hi": _finite_or_none(hi)})
    return out


def _finite_or_none(value: float | None) -> float | None:
    """JSON has no NaN: undefined metrics are written as null."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def frame_fingerprint(frame: pd.DataFrame, columns: Sequence[str]) -> str:
    """A short SHA-256 of the given columns' values: the identity of an evaluation split."""
    digest = hashlib.sha256()
    for column in columns:
        values = frame[column].to_numpy()
        if values.dtype.kind in "fiub":
            digest.update(np.ascontiguousarray(values.astype(np.float64)).tobytes())
        else:
            digest.update("\x1f".join(map(str, values)).encode())
        digest.update(column.encode())
    return digest.hexdigest()[:16]
