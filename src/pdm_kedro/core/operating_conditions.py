"""Operating conditions: derived from operating-setting columns, and per-condition sensor scaling.

Pure numpy (no pandas, no sklearn at apply time) so that the edge runtime applies exactly what the
training pipeline fitted on the train split:

- :func:`fit_conditions` clusters the operating settings of the train rows (k-means, seeded
  k-means++ initialisation, settings standardised first); :func:`assign_conditions` gives each row
  the label of its nearest centre (``cond_0`` ... in order of the centres).
- :func:`fit_condition_scaling` fits each sensor's mean and standard deviation per condition on the
  train rows; :func:`apply_condition_scaling` turns readings into per-condition z-scores. A
  condition unseen in train falls back to the pooled train constants.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

POOLED = "__pooled__"


def condition_label(index: int) -> str:
    return f"cond_{index}"


def fit_conditions(
    settings: np.ndarray, columns: Sequence[str], n_conditions: int, seed: int, n_init: int = 4
) -> dict[str, Any]:
    """K-means centres of the (standardised) operating settings of the train rows."""
    from sklearn.cluster import KMeans  # noqa: PLC0415 (fitting only: the edge needs numpy alone)

    x = np.asarray(settings, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] != len(columns):
        raise ValueError(f"operating settings: expected {len(columns)} columns, got {x.shape}")
    if len(x) < n_conditions:
        raise ValueError(f"{len(x)} train rows cannot make {n_conditions} operating conditions")
    mean = x.mean(axis=0)
    sd = x.std(axis=0)
    sd = np.where(sd > 0, sd, 1.0)
    z = (x - mean) / sd
    km = KMeans(n_clusters=n_conditions, n_init=n_init, random_state=seed).fit(z)
    centres = km.cluster_centers_
    order = np.lexsort(centres.T[::-1])  # deterministic label order: by the centres' values
    centres = centres[order]
    labels = assign_conditions(
        x,
        {
            "columns": list(columns),
            "mean": mean.tolist(),
            "sd": sd.tolist(),
            "centres": centres.tolist(),
        },
    )
    counts = {lab: int(np.sum(labels == lab)) for lab in sorted(set(labels.tolist()))}
    return {
        "method": "kmeans",
        "columns": list(columns),
        "mean": mean.tolist(),
        "sd": sd.tolist(),
        "centres": centres.tolist(),
        "labels": [condition_label(i) for i in range(n_conditions)],
        "train_rows_per_condition": counts,
        "seed": int(seed),
    }


def assign_conditions(settings: np.ndarray, conditions: dict[str, Any]) -> np.ndarray:
    """The nearest centre's label (``cond_<i>``) for every row of operating settings."""
    x = np.asarray(settings, dtype=np.float64)
    z = (x - np.asarray(conditions["mean"])) / np.asarray(conditions["sd"])
    centres = np.asarray(conditions["centres"], dtype=np.float64)
    distance = ((z[:, None, :] - centres[None, :, :]) ** 2).sum(axis=2)
    nearest = np.argmin(distance, axis=1)
    return np.array([condition_label(int(i)) for i in nearest], dtype=object)


def fit_condition_scaling(
    values: np.ndarray, conditions: np.ndarray, sensors: Sequence[str], floor: float = 1e-6
) -> dict[str, Any]:
    """Per-condition mean and standard deviation of each sensor on the train rows (NaN ignored).

    The standard deviation is floored at ``floor`` times the pooled one (and at ``floor``), so a
    sensor that is constant within a condition does not blow up.
    """
    x = np.asarray(values, dtype=np.float64)
    cond = np.asarray(conditions).astype(str)
    pooled_mean = np.nanmean(x, axis=0)
    pooled_sd = np.nanstd(x, axis=0)
    low = np.maximum(pooled_sd * floor, floor)

    def stats(rows: np.ndarray) -> dict[str, list[float]]:
        mean = np.where(
            np.isfinite(np.nanmean(rows, axis=0)), np.nanmean(rows, axis=0), pooled_mean
        )
        sd = np.nanstd(rows, axis=0)
        sd = np.where(np.isfinite(sd), np.maximum(sd, low), np.maximum(pooled_sd, low))
        return {"mean": mean.tolist(), "sd": sd.tolist()}

    per = {label: stats(x[cond == label]) for label in sorted(set(cond.tolist()))}
    per[POOLED] = stats(x)
    return {
        "sensors": list(sensors),
        "per_condition": per,
        "train_rows": {k: int(np.sum(cond == k)) for k in per if k != POOLED},
    }


def apply_condition_scaling(
    values: np.ndarray, conditions: np.ndarray, scaling: dict[str, Any]
) -> np.ndarray:
    """Per-condition z-scores of the readings (a condition unseen in train: pooled constants)."""
    x = np.asarray(values, dtype=np.float64)
    cond = np.asarray(conditions).astype(str)
    per = scaling["per_condition"]
    out = np.empty_like(x)
    for label in set(cond.tolist()):
        rows = cond == label
        stats = per.get(label, per[POOLED])
        out[rows] = (x[rows] - np.asarray(stats["mean"])) / np.asarray(stats["sd"])
    return out
