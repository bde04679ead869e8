"""Remaining-useful-life metrics, numpy only."""

from __future__ import annotations

import numpy as np

# NASA/PHM08 scoring constants: late predictions (d > 0) cost more than early ones.
NASA_EARLY_SCALE = 13.0
NASA_LATE_SCALE = 10.0


def nasa_scores(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    """Per-prediction NASA/PHM08 score with d = pred - true (in the target's unit, hours here).

    ``exp(-d/13) - 1`` for early predictions (d < 0), ``exp(d/10) - 1`` for late ones (d >= 0).
    """
    d = np.asarray(y_pred, dtype=np.float64) - np.asarray(y_true, dtype=np.float64)
    # clip the exponent: one absurd prediction must not overflow the sum to inf
    early = np.expm1(np.minimum(-d / NASA_EARLY_SCALE, 700.0))
    late = np.expm1(np.minimum(d / NASA_LATE_SCALE, 700.0))
    return np.where(d < 0, early, late)


def regression_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """RMSE, MAE, R2 and the NASA score (sum and per-prediction mean)."""
    y_true = np.asarray(y_true, dtype=np.float64)
    y_pred = np.asarray(y_pred, dtype=np.float64)
    err = y_pred - y_true
    ss_tot = float(np.sum((y_true - y_true.mean()) ** 2)) if y_true.size else 0.0
    r2 = 1.0 - float(np.sum(err**2)) / ss_tot if ss_tot > 0 else float("nan")
    nasa = nasa_scores(y_true, y_pred)
    return {
        "rmse": float(np.sqrt(np.mean(err**2))) if err.size else float("nan"),
        "mae": float(np.mean(np.abs(err))) if err.size else float("nan"),
        "r2": r2,
        "nasa_score": float(np.sum(nasa)),
        "nasa_score_mean": float(np.mean(nasa)) if nasa.size else float("nan"),
    }
