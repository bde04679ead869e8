"""Scoring protocols of the public real-data sets, as pure functions.

- C-MAPSS (RUL): one prediction per test engine at its last observed cycle, truth capped at 125;
  RMSE and the NASA/PHM08 score.
- SKAB (anomaly detection): per file, fit on the first rows, predict the rest, pool the point-wise
  flags of all files; F1, false-alarm rate, missed-alarm rate. The detector here is a PCA residual
  detector (Hotelling T-squared plus Q / squared prediction error) fitted per file, with a trailing
  mean of the score; its alarm margin is calibrated on anomaly-free recordings only.
- Forecasting: mean absolute error of an h-step-ahead forecast against the naive (last value)
  forecast on the same points, and MASE.

Used by ``benchmarks/bench_real_data.py`` on the outputs of ``kedro run -e cmapss`` / ``-e skab``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from pdm_kedro import contract as c


def last_rows(features: pd.DataFrame) -> pd.DataFrame:
    """The last row (latest timestamp) of each episode: C-MAPSS scores only these."""
    ordered = features.sort_values([c.EPISODE, c.TIMESTAMP], kind="stable")
    return ordered.groupby(c.EPISODE, sort=True).tail(1).reset_index(drop=True)


def truncate_episodes(features: pd.DataFrame, seed: int, min_rows: int = 1) -> pd.DataFrame:
    """One row per episode at a random cut (seeded): run-to-failure val engines made test-like."""
    rng = np.random.default_rng(seed)
    rows = []
    for _, group in features.sort_values([c.EPISODE, c.TIMESTAMP]).groupby(c.EPISODE, sort=True):
        cut = int(rng.integers(min(min_rows, len(group)) - 1, len(group)))
        rows.append(group.iloc[[cut]])
    return pd.concat(rows, ignore_index=True)


def rmse(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Root mean squared error."""
    d = np.asarray(y_pred, dtype=np.float64) - np.asarray(y_true, dtype=np.float64)
    return float(np.sqrt(np.mean(d * d)))


def nasa_score(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """PHM08 / NASA scoring function: late predictions cost more than early ones.

    d = pred - true; sum of exp(-d/13) - 1 for d < 0 (early) and exp(d/10) - 1 for d >= 0 (late).
    """
    d = np.asarray(y_pred, dtype=np.float64) - np.asarray(y_true, dtype=np.float64)
    return float(np.sum(np.where(d < 0, np.exp(-d / 13.0) - 1.0, np.exp(d / 10.0) - 1.0)))


def binary_rates(y_true: np.ndarray, flags: np.ndarray) -> dict[str, float]:
    """F1, false-alarm rate (share of normal points flagged) and missed-alarm rate (share of
    anomalous points not flagged), as the SKAB leaderboard reports them (rates in %)."""
    y = np.asarray(y_true).astype(bool)
    f = np.asarray(flags).astype(bool)
    tp = int(np.sum(y & f))
    fp = int(np.sum(~y & f))
    fn = int(np.sum(y & ~f))
    tn = int(np.sum(~y & ~f))
    f1 = 2 * tp / (2 * tp + fp + fn) if tp else 0.0
    return {
        "f1": float(f1),
        "far_pct": 100.0 * fp / max(fp + tn, 1),
        "mar_pct": 100.0 * fn / max(fn + tp, 1),
        "n_points": int(y.size),
        "anomalous_share": float(y.mean()) if y.size else 0.0,
    }


def _trailing_mean(x: np.ndarray, window: int) -> np.ndarray:
    csum = np.cumsum(np.r_[0.0, x])
    n = np.arange(1, x.size + 1)
    lo = np.maximum(n - window, 0)
    return (csum[n] - csum[lo]) / (n - lo)


def fit_pca_detector(fit_rows: np.ndarray, explained: float, scale_floor: float) -> dict[str, Any]:
    """Standardise on the fit rows, keep the principal components explaining ``explained``."""
    mean = fit_rows.mean(axis=0)
    sd = np.maximum(fit_rows.std(axis=0), scale_floor)
    z = (fit_rows - mean) / sd
    _, s, vt = np.linalg.svd(z, full_matrices=False)
    var = s**2 / max(len(z) - 1, 1)
    k = int(np.searchsorted(np.cumsum(var) / var.sum(), explained) + 1)
    k = min(k, z.shape[1] - 1)
    detector = {
        "mean": mean,
        "sd": sd,
        "components": vt[:k],
        "variance": np.maximum(var[:k], 1e-12),
    }
    raw = _raw_scores(detector, fit_rows)
    detector["t2_ref"] = float(np.quantile(raw[0], 0.99)) or 1.0
    detector["q_ref"] = float(np.quantile(raw[1], 0.99)) or 1.0
    return detector


def _raw_scores(detector: dict[str, Any], rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    z = (rows - detector["mean"]) / detector["sd"]
    scores = z @ detector["components"].T
    t2 = np.sum(scores**2 / detector["variance"], axis=1)
    residual = z - scores @ detector["components"]
    q = np.sum(residual**2, axis=1)
    return t2, q


def pca_scores(detector: dict[str, Any], rows: np.ndarray, window: int) -> np.ndarray:
    """Anomaly score per row: T-squared and Q over their fit-time 99 % quantiles, summed, then a
    trailing mean over ``window`` rows (causal)."""
    t2, q = _raw_scores(detector, rows)
    return _trailing_mean(t2 / detector["t2_ref"] + q / detector["q_ref"], window)


def calibrate_alarm_margin(
    normal_runs: Sequence[np.ndarray],
    fit_rows: int,
    explained: float,
    window: int,
    target_far: float,
    scale_floor: float,
) -> dict[str, Any]:
    """The alarm threshold (in units of the fit rows' own score maximum) that keeps the false-alarm
    rate at ``target_far`` on recordings of normal operation only (no labelled anomaly is used).

    Each run is handled as a test file would be: fit on its first ``fit_rows``, score the rest.
    """
    ratios = []
    for run in normal_runs:
        det = fit_pca_detector(run[:fit_rows], explained, scale_floor)
        scores = pca_scores(det, run, window)
        reference = float(np.max(scores[:fit_rows]))
        ratios.append(scores[fit_rows:] / reference)
    pooled = np.concatenate(ratios)
    margin = float(np.quantile(pooled, 1.0 - target_far))
    return {
        "margin": margin,
        "target_far": target_far,
        "far_on_normal_runs": float(np.mean(pooled >= margin)),
        "normal_runs": len(normal_runs),
        "normal_points": int(pooled.size),
    }


def detect_per_file(
    files: Sequence[np.ndarray],
    fit_rows: int,
    explained: float,
    window: int,
    margin: float,
    scale_floor: float,
    reference_quantile: float = 1.0,
) -> list[np.ndarray]:
    """Flags of the rows after ``fit_rows`` of each file (SKAB protocol: fit per file).

    The alarm threshold is ``margin`` times the ``reference_quantile`` of the file's own score on
    its fit rows (1.0: their maximum).
    """
    flags = []
    for rows in files:
        det = fit_pca_detector(rows[:fit_rows], explained, scale_floor)
        scores = pca_scores(det, rows, window)
        threshold = margin * float(np.quantile(scores[:fit_rows], reference_quantile))
        flags.append(scores[fit_rows:] >= threshold)
    return flags


def naive_forecast_errors(
    series: np.ndarray, forecast: np.ndarray, horizon: int
) -> dict[str, float]:
    """MAE of an h-step forecast beside the naive forecast (value h steps earlier), and MASE."""
    y = np.asarray(series, dtype=np.float64)
    f = np.asarray(forecast, dtype=np.float64)
    naive = y[:-horizon]
    truth = y[horizon:]
    model = f[horizon:]
    mae_model = float(np.mean(np.abs(model - truth)))
    mae_naive = float(np.mean(np.abs(naive - truth)))
    return {
        "mae": mae_model,
        "mae_naive": mae_naive,
        "mase": mae_model / mae_naive if mae_naive > 0 else float("nan"),
    }
