"""The family metrics document every model family writes (see the artefact contract)."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd


def metric_rows(
    values: Mapping[str, float], baselines: Mapping[str, float], baseline_name: str
) -> list[dict[str, Any]]:
    """``[{"metric", "value", "baseline", "baseline_name"}]`` for every metric in ``values``."""
    return [
        {
            "metric": name,
            "value": _finite_or_none(value),
            "baseline": _finite_or_none(baselines.get(name)),
            "baseline_name": baseline_name,
        }
        for name, value in values.items()
    ]


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
