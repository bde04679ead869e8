"""Binary-classification metrics and the decision-threshold choice, numpy only."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import average_precision_score, precision_recall_curve, roc_auc_score


def confusion_counts(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, int]:
    """True/false positives and negatives of 0/1 predictions."""
    y_true = np.asarray(y_true).astype(bool)
    y_pred = np.asarray(y_pred).astype(bool)
    return {
        "tp": int(np.sum(y_true & y_pred)),
        "fp": int(np.sum(~y_true & y_pred)),
        "fn": int(np.sum(y_true & ~y_pred)),
        "tn": int(np.sum(~y_true & ~y_pred)),
    }


def threshold_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """F1, precision and recall of 0/1 predictions (0 when undefined)."""
    counts = confusion_counts(y_true, y_pred)
    tp, fp, fn = counts["tp"], counts["fp"], counts["fn"]
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0
    return {"f1": float(f1), "precision": float(precision), "recall": float(recall)}


def ranking_metrics(y_true: np.ndarray, scores: np.ndarray) -> dict[str, float]:
    """PR-AUC (average precision) and ROC-AUC of scores; NaN when only one class is present."""
    y_true = np.asarray(y_true).astype(int)
    if np.unique(y_true).size < 2:
        return {"pr_auc": float("nan"), "roc_auc": float("nan")}
    return {"pr_auc": pr_auc(y_true, scores), "roc_auc": float(roc_auc_score(y_true, scores))}


def pr_auc(y_true: np.ndarray, scores: np.ndarray) -> float:
    """PR-AUC (average precision) alone, as :func:`ranking_metrics` gives it: for a bootstrap,
    whose 200 resamples would otherwise each compute a ROC-AUC nobody reads."""
    y_true = np.asarray(y_true).astype(int)
    if np.unique(y_true).size < 2:
        return float("nan")
    return float(average_precision_score(y_true, scores))


def best_f1_threshold(y_true: np.ndarray, scores: np.ndarray, min_threshold: float = 0.0) -> dict:
    """The score threshold that maximises F1 on ``(y_true, scores)``: flag when score >= threshold.

    Meant for a validation split; ties go to the highest threshold (fewest alarms). The threshold
    is never below ``min_threshold``: when no score reaches it, it is ``min_threshold`` itself
    (nothing flagged, F1 0).
    """
    y_true = np.asarray(y_true).astype(int)
    if y_true.sum() == 0:
        return {"threshold": float(max(np.max(scores, initial=0.5), min_threshold)), "f1": 0.0}
    precision, recall, thresholds = precision_recall_curve(y_true, scores)
    precision, recall = precision[:-1], recall[:-1]
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros_like(denom), where=denom > 0)
    allowed = thresholds >= min_threshold
    if not allowed.any():  # every score is below the minimum: flag nothing
        flagged = np.asarray(scores) >= min_threshold
        return {"threshold": float(min_threshold), "f1": threshold_metrics(y_true, flagged)["f1"]}
    f1 = np.where(allowed, f1, -1.0)
    best = int(np.flatnonzero(f1 == f1.max())[-1])
    return {"threshold": float(thresholds[best]), "f1": float(max(f1[best], 0.0))}
