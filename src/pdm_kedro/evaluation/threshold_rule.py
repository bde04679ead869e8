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


def fit_threshold_rule(
    frame: pd.DataFrame, columns: Sequence[str], label: str, quantiles: int = 99
) -> dict:
    """Best (column, direction, threshold) by F1 on ``frame``; NaN readings never flag."""
    y = frame[label].to_numpy().astype(bool)
    best = {"column": None, "direction": ">=", "threshold": float("inf"), "f1": 0.0}
    levels = np.linspace(0.01, 0.99, quantiles)
    for column in columns:
        values = frame[column].to_numpy(dtype=np.float64)
        finite = values[np.isfinite(values)]
        if finite.size == 0:
            continue
        for threshold in np.unique(np.quantile(finite, levels)):
            for direction in (">=", "<="):
                flags = values >= threshold if direction == ">=" else values <= threshold
                f1 = f1_score_binary(y, flags)
                if f1 > best["f1"]:
                    best = {
                        "column": column,
                        "direction": direction,
                        "threshold": float(threshold),
                        "f1": f1,
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
