"""The single-row threshold rule: the simplest honest baseline for a binary label.

It picks one raw sensor, one direction and one threshold on a fitting split and flags a row when
that single reading crosses the threshold. If such a rule scored near-perfect F1, the labels would
be computable from one row's readings (the leakage that sank a previous attempt).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd


def f1_score_binary(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """F1 of the positive class (0 when there is no true or predicted positive)."""
    y_true = np.asarray(y_true).astype(bool)
    y_pred = np.asarray(y_pred).astype(bool)
    tp = np.sum(y_true & y_pred)
    denom = 2 * tp + np.sum(y_true & ~y_pred) + np.sum(~y_true & y_pred)
    return float(2 * tp / denom) if denom else 0.0


def _f1_per_threshold(
    values: np.ndarray, y: np.ndarray, thresholds: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """F1 of ``values >= t`` and of ``values <= t`` for every ``t`` at once (NaN never flags),
    from counts on the sorted readings: the numbers :func:`f1_score_binary` gives one by one."""
    finite = np.isfinite(values)
    positives = np.sort(values[finite & y])
    negatives = np.sort(values[finite & ~y])
    n_true = int(y.sum())

    def f1(tp: np.ndarray, fp: np.ndarray) -> np.ndarray:
        denom = 2 * tp + (n_true - tp) + fp
        return np.divide(2 * tp, denom, out=np.zeros(len(tp)), where=denom > 0)

    at_least = f1(
        positives.size - np.searchsorted(positives, thresholds, side="left"),
        negatives.size - np.searchsorted(negatives, thresholds, side="left"),
    )
    at_most = f1(
        np.searchsorted(positives, thresholds, side="right"),
        np.searchsorted(negatives, thresholds, side="right"),
    )
    return at_least, at_most


def fit_threshold_rule(
    frame: pd.DataFrame, columns: Sequence[str], label: str, quantiles: int = 99
) -> dict:
    """Best (column, direction, threshold) by F1 on ``frame``; NaN readings never flag.

    Candidates are each column's quantiles, tried in order (ascending threshold, ``>=`` before
    ``<=``); the first best wins, and a later column only when strictly better.
    """
    y = frame[label].to_numpy().astype(bool)
    best = {"column": None, "direction": ">=", "threshold": float("inf"), "f1": 0.0}
    levels = np.linspace(0.01, 0.99, quantiles)
    for column in columns:
        values = frame[column].to_numpy(dtype=np.float64)
        finite = values[np.isfinite(values)]
        if finite.size == 0:
            continue
        thresholds = np.unique(np.quantile(finite, levels))
        at_least, at_most = _f1_per_threshold(values, y, thresholds)
        scores = np.column_stack([at_least, at_most]).ravel()  # the order they are tried in
        first_best = int(np.argmax(scores))
        if scores[first_best] > best["f1"]:
            best = {
                "column": column,
                "direction": (">=", "<=")[first_best % 2],
                "threshold": float(thresholds[first_best // 2]),
                "f1": float(scores[first_best]),
            }
    return best


def apply_threshold_rule(frame: pd.DataFrame, rule: dict) -> np.ndarray:
    """0/1 flags of a fitted rule on ``frame``."""
    if rule["column"] is None:
        return np.zeros(len(frame), dtype=np.int8)
    values = frame[rule["column"]].to_numpy(dtype=np.float64)
    flags = (
        values >= rule["threshold"] if rule["direction"] == ">=" else values <= rule["threshold"]
    )
    return flags.astype(np.int8)
