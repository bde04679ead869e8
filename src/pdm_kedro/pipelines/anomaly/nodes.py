"""Anomaly-detection family: unsupervised detectors of injected sensor faults.

The detectors are fitted on healthy training rows only (``anomaly == 0``); the labels pick the
fitting rows, the detector and its threshold on val. The test split is only scored.

Detector inputs are plain feature-table columns, chosen by parameters: each sensor's reading, its
trailing means (3 h, 12 h, 48 h) and its absolute change since the previous row (``motion``).
Everything that turns them into a score is one scikit-learn Pipeline, so skl2onnx exports it
whole and the edge needs no extra transform:

- readings and means -> a fixed linear map (a GaussianRandomProjection whose components are set,
  not drawn) -> residuals ``reading - trailing mean`` (absolute levels, which move with
  degradation and drift, never reach the detector) -> StandardScaler -> PCA(whiten=True):
  departures in directions healthy data rarely move in stand out (a regime change moves the
  sensors together and is learned as normal);
- motion columns -> Binarizer(threshold) -> StandardScaler: 1 when the reading changed, 0 when it
  repeated exactly (stuck sensors, dropouts held at the floor); scaling by the healthy rows' rate
  of repeats makes a rare repeat as loud as a large departure (about -20 sd);
- then the detector (IsolationForest or OneClassSVM); anomaly score = -decision_function(X).
"""

from __future__ import annotations

import logging
import warnings
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from sklearn.compose import ColumnTransformer
from sklearn.decomposition import PCA
from sklearn.ensemble import IsolationForest
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import Binarizer, StandardScaler
from sklearn.random_projection import GaussianRandomProjection
from sklearn.svm import OneClassSVM

from pdm_kedro import contract as c
from pdm_kedro.evaluation.threshold_rule import (
    apply_threshold_rule,
    f1_score_binary,
    fit_threshold_rule,
)
from pdm_kedro.fleet import parse_machine

logger = logging.getLogger(__name__)

FAMILY = "anomaly"
LABEL = c.ANOMALY
ISOLATION_FOREST = "isolation_forest"
ONE_CLASS_SVM = "one_class_svm"
METRIC_NAMES = ("precision", "recall", "f1", "false_alarm_rate", "missed_alarm_rate")


def select_detector_inputs(machine: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    """The detector's input columns, in order: readings, trailing means, motion columns.

    Returns ``{"feature_names": [...], "n_sensors", "n_means", "n_motion"}`` (``n_means`` and
    ``n_motion`` count blocks of one column per sensor).
    """
    sensors = parse_machine(machine).sensor_names
    inputs = params["inputs"]
    suffixes = [inputs["reading_suffix"], *inputs["mean_suffixes"], *inputs["motion_suffixes"]]
    return {
        "feature_names": [f"{s}{suffix}" for suffix in suffixes for s in sensors],
        "n_sensors": len(sensors),
        "n_means": len(inputs["mean_suffixes"]),
        "n_motion": len(inputs["motion_suffixes"]),
    }


def sample_healthy_rows(features_train: pd.DataFrame, params: dict[str, Any]) -> pd.DataFrame:
    """A seeded draw of healthy training rows: ``anomaly == 0`` (and optionally not end of life).

    ``healthy.exclude_failure_horizon`` also drops rows with ``failure_within_horizon == 1``;
    ``healthy.max_rows`` caps the draw. Rows come in the seeded draw's random order, so any
    leading slice (a detector's ``fit_rows``) is itself a random sample of the whole split.
    """
    healthy = params["healthy"]
    keep = features_train[LABEL].to_numpy() == 0
    if healthy.get("exclude_failure_horizon") and c.FAILURE_WITHIN_HORIZON in features_train:
        keep &= features_train[c.FAILURE_WITHIN_HORIZON].to_numpy() == 0
    rows = np.flatnonzero(keep)
    rng = np.random.default_rng(int(params["seed"]))
    rows = rng.permutation(rows)[: int(healthy["max_rows"])]
    logger.info("anomaly: %d healthy training rows drawn of %d", rows.size, len(features_train))
    return features_train.iloc[rows].reset_index(drop=True)


def detector_matrix(frame: pd.DataFrame, feature_names: list[str]) -> np.ndarray:
    """The float32 matrix the detector (and its ONNX export) reads."""
    return frame[list(feature_names)].to_numpy(dtype=np.float32)


def residual_matrix(n_sensors: int, n_means: int) -> np.ndarray:
    """The fixed linear map (inputs x outputs) from readings and means to residuals.

    Inputs: the readings block then one block per trailing mean; outputs: ``reading - mean`` for
    each mean block, one column per sensor.
    """
    k = n_sensors
    weights = np.zeros((k * (1 + n_means), k * n_means))
    eye = np.eye(k)
    for j in range(n_means):
        weights[:k, j * k : (j + 1) * k] = eye
        weights[(1 + j) * k : (2 + j) * k, j * k : (j + 1) * k] = -eye
    return weights


def set_residual_map(projection: GaussianRandomProjection, inputs: dict[str, Any]) -> None:
    """Replace a fitted GaussianRandomProjection's random components by :func:`residual_matrix`.

    Its transform is ``X @ components_.T`` and skl2onnx exports it as one MatMul, so the map
    stays a stock scikit-learn step; nothing in it is random or learned.
    """
    projection.components_ = residual_matrix(inputs["n_sensors"], inputs["n_means"]).T.copy()


def build_preprocessor(inputs: dict[str, Any], params: dict[str, Any]) -> ColumnTransformer:
    """Readings and means -> residuals -> scaler + whitened PCA; motion columns -> changed (1) /
    repeated (0), standardised by the fitting rows' rate of repeats."""
    prep = params["preprocessing"]
    k, n_means = inputs["n_sensors"], inputs["n_means"]
    n_level = k * (1 + n_means)
    return ColumnTransformer(
        [
            (
                "residual",
                Pipeline(
                    [
                        ("subtract_means", GaussianRandomProjection(n_components=k * n_means)),
                        ("scale", StandardScaler()),
                        (
                            "whiten",
                            PCA(whiten=bool(prep["whiten"]), random_state=int(params["seed"])),
                        ),
                    ]
                ),
                list(range(n_level)),
            ),
            (
                "motion",
                make_pipeline(
                    Binarizer(threshold=float(prep["motion_threshold"])), StandardScaler()
                ),
                list(range(n_level, len(inputs["feature_names"]))),
            ),
        ]
    )


def fit_preprocessor(
    x: np.ndarray, inputs: dict[str, Any], params: dict[str, Any]
) -> ColumnTransformer:
    """Fit :func:`build_preprocessor` on ``x`` with the fixed residual map in place.

    The ColumnTransformer is fitted once (its projection draws random components), then the
    residual branch gets the fixed map and its scaler and PCA are refitted on true residuals.
    """
    prepare = build_preprocessor(inputs, params)
    with warnings.catch_warnings():  # a random projection would warn about its component count
        warnings.simplefilter("ignore")
        prepare.fit(x)
    branch = prepare.named_transformers_["residual"]
    set_residual_map(branch.named_steps["subtract_means"], inputs)
    n_level = inputs["n_sensors"] * (1 + inputs["n_means"])
    residuals = branch.named_steps["subtract_means"].transform(x[:, :n_level])
    branch.named_steps["scale"].fit(residuals)
    branch.named_steps["whiten"].fit(branch.named_steps["scale"].transform(residuals))
    return prepare


def _fit_detector(
    healthy: pd.DataFrame, inputs: dict[str, Any], detector: Any, rows: int, params: dict[str, Any]
) -> Pipeline:
    """Fit preprocessing + ``detector`` on the first ``rows`` healthy rows of the seeded draw."""
    x = detector_matrix(healthy, inputs["feature_names"])[:rows]
    prepare = fit_preprocessor(x, inputs, params)
    detector.fit(prepare.transform(x))
    return Pipeline([("prepare", prepare), ("detect", detector)])


def fit_isolation_forest(
    healthy: pd.DataFrame, inputs: dict[str, Any], params: dict[str, Any]
) -> Pipeline:
    """Isolation Forest (seeded) on healthy training rows."""
    settings = dict(params["detectors"][ISOLATION_FOREST])
    rows = int(settings.pop("fit_rows"))
    detector = IsolationForest(**settings, random_state=int(params["seed"]), n_jobs=1)
    return _fit_detector(healthy, inputs, detector, rows, params)


def fit_one_class_svm(
    healthy: pd.DataFrame, inputs: dict[str, Any], params: dict[str, Any]
) -> Pipeline:
    """One-class SVM (RBF kernel, deterministic) on healthy training rows."""
    settings = dict(params["detectors"][ONE_CLASS_SVM])
    rows = int(settings.pop("fit_rows"))
    return _fit_detector(healthy, inputs, OneClassSVM(**settings), rows, params)


def anomaly_scores(estimator: Any, frame: pd.DataFrame, feature_names: list[str]) -> np.ndarray:
    """Anomaly score of every row: ``-decision_function`` (higher = more anomalous)."""
    return -np.asarray(estimator.decision_function(detector_matrix(frame, feature_names)))


def best_f1_threshold(y_true: np.ndarray, scores: np.ndarray) -> tuple[float, float]:
    """The score threshold (flag = score >= threshold) with the highest F1, and that F1."""
    y = np.asarray(y_true).astype(bool)
    order = np.argsort(-scores, kind="stable")
    ranked = scores[order]
    tp = np.cumsum(y[order])
    flagged = np.arange(1, len(y) + 1)
    f1 = 2 * tp / (flagged + y.sum()) if y.any() else np.zeros(len(y))
    # Only cut between distinct scores: ties are flagged together.
    last_of_tie = np.r_[ranked[1:] != ranked[:-1], True]
    f1 = np.where(last_of_tie, f1, -1.0)
    best = int(np.argmax(f1))
    return float(ranked[best]), float(max(f1[best], 0.0))


def choose_detector(
    isolation_forest: Pipeline,
    one_class_svm: Pipeline,
    features_val: pd.DataFrame,
    inputs: dict[str, Any],
) -> dict[str, Any]:
    """Each detector's val F1 at its own best val threshold; the higher F1 wins.

    Returns ``{"detector", "threshold", "candidates": {name: {"val_f1", "threshold"}}}``.
    """
    y_val = features_val[LABEL].to_numpy()
    candidates = {}
    for name, estimator in ((ISOLATION_FOREST, isolation_forest), (ONE_CLASS_SVM, one_class_svm)):
        scores = anomaly_scores(estimator, features_val, inputs["feature_names"])
        threshold, f1 = best_f1_threshold(y_val, scores)
        candidates[name] = {"val_f1": f1, "threshold": threshold}
    winner = max(candidates, key=lambda name: candidates[name]["val_f1"])
    logger.info(
        "anomaly: %s wins on val (F1 %s)",
        winner,
        {k: round(v["val_f1"], 3) for k, v in candidates.items()},
    )
    return {
        "detector": winner,
        "threshold": candidates[winner]["threshold"],
        "candidates": candidates,
    }


def package_anomaly_model(
    isolation_forest: Pipeline,
    one_class_svm: Pipeline,
    selection: dict[str, Any],
    inputs: dict[str, Any],
) -> dict[str, Any]:
    """The family's model artefact (contract): the chosen detector, its inputs and threshold."""
    estimator = {ISOLATION_FOREST: isolation_forest, ONE_CLASS_SVM: one_class_svm}
    return {
        "family": FAMILY,
        "estimator": estimator[selection["detector"]],
        "feature_names": list(inputs["feature_names"]),
        "threshold": float(selection["threshold"]),
        "detector": selection["detector"],
        "input_transform": None,  # every transform is inside the sklearn Pipeline
    }


def fit_anomaly_rule(
    features_train: pd.DataFrame,
    features_val: pd.DataFrame,
    machine: dict[str, Any],
    params: dict[str, Any],
) -> dict[str, Any]:
    """The baseline: the best single raw-sensor threshold for ``anomaly`` on train + val."""
    spec = parse_machine(machine)
    fitting = pd.concat([features_train, features_val], ignore_index=True)
    rule = fit_threshold_rule(fitting, spec.sensor_names, LABEL, int(params["baseline_quantiles"]))
    return {k: rule[k] for k in ("column", "direction", "threshold")}


def score_test_rows(model: dict[str, Any], features_test: pd.DataFrame) -> pd.DataFrame:
    """Test rows with the label, the anomaly score and the flag at the model's threshold."""
    scores = anomaly_scores(model["estimator"], features_test, model["feature_names"])
    out = features_test[[c.TIMESTAMP, c.EPISODE, LABEL]].copy()
    out["score"] = scores
    out["flag"] = (scores >= model["threshold"]).astype(np.int8)
    return out.reset_index(drop=True)


def detection_metrics(y_true: np.ndarray, flags: np.ndarray) -> dict[str, float]:
    """Precision, recall, F1, false-alarm rate (share of normal rows flagged) and missed-alarm
    rate (share of anomalous rows not flagged); fractions in [0, 1]."""
    y = np.asarray(y_true).astype(bool)
    p = np.asarray(flags).astype(bool)
    tp, fp, fn = int(np.sum(y & p)), int(np.sum(~y & p)), int(np.sum(y & ~p))
    normal, anomalous = int(np.sum(~y)), int(np.sum(y))
    return {
        "precision": tp / (tp + fp) if tp + fp else 0.0,
        "recall": tp / anomalous if anomalous else 0.0,
        "f1": f1_score_binary(y, p),
        "false_alarm_rate": fp / normal if normal else 0.0,
        "missed_alarm_rate": fn / anomalous if anomalous else 0.0,
    }


def evaluate_anomaly_model(
    test_scores: pd.DataFrame,
    baseline_rule: dict[str, Any],
    features_test: pd.DataFrame,
    selection: dict[str, Any],
    machine: dict[str, Any],
    params: dict[str, Any],
) -> dict[str, Any]:
    """Test metrics of the detector beside the single-row rule on the same test rows."""
    y = test_scores[LABEL].to_numpy()
    model_metrics = detection_metrics(y, test_scores["flag"].to_numpy())
    rule_metrics = detection_metrics(
        features_test[LABEL].to_numpy(), apply_threshold_rule(features_test, baseline_rule)
    )
    detector = selection["detector"]
    return {
        "machine_id": parse_machine(machine).machine_id,
        "family": FAMILY,
        "split": "test",
        "n_rows": len(test_scores),
        "positive_rate": float(np.mean(y)) if len(y) else 0.0,
        "metrics": [
            {
                "metric": name,
                "value": float(model_metrics[name]),
                "baseline": float(rule_metrics[name]),
                "baseline_name": "single_row_threshold_rule",
            }
            for name in METRIC_NAMES
        ],
        "val_metrics": {
            "f1": selection["candidates"][detector]["val_f1"],
            "detector_f1": {k: v["val_f1"] for k, v in selection["candidates"].items()},
        },
        "model": {
            "detector": detector,
            "detectors": {k: dict(v) for k, v in params["detectors"].items()},
            "inputs": dict(params["inputs"]),
            "preprocessing": dict(params["preprocessing"]),
            "healthy": dict(params["healthy"]),
            "seed": int(params["seed"]),
        },
        "baseline_rule": dict(baseline_rule),
        "threshold": float(selection["threshold"]),
        "lower_is_better": ["false_alarm_rate", "missed_alarm_rate"],
        "plots": ["score_distribution.png"],
    }


def plot_score_distribution(test_scores: pd.DataFrame, metrics: dict[str, Any]) -> Figure:
    """Histogram of test anomaly scores, normal vs anomalous rows, with the val threshold."""
    fig = Figure(figsize=(6.0, 4.0))
    ax = fig.subplots()
    scores = test_scores["score"].to_numpy()
    y = test_scores[LABEL].to_numpy().astype(bool)
    bins = np.histogram_bin_edges(scores, bins=60) if scores.size else 10
    ax.hist(scores[~y], bins=bins, alpha=0.6, label=f"normal ({(~y).sum()})", density=True)
    ax.hist(scores[y], bins=bins, alpha=0.6, label=f"anomalous ({y.sum()})", density=True)
    ax.axvline(metrics["threshold"], color="k", ls="--", label="threshold (chosen on val)")
    ax.set_yscale("log")
    f1 = {row["metric"]: row for row in metrics["metrics"]}["f1"]
    ax.set(xlabel="anomaly score (-decision_function)", ylabel="density (log)")
    ax.set_title(
        f"{metrics['machine_id']}: {metrics['model']['detector']} on test, "
        f"F1 {f1['value']:.2f} (rule {f1['baseline']:.2f})",
        fontsize=9,
    )
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
