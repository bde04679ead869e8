"""Anomaly-detection family: unsupervised detectors of injected sensor faults.

The detectors are fitted on healthy training rows only (``anomaly == 0``); the labels pick the
fitting rows, the detector and its threshold on val. The test split is only scored.

Detector inputs are plain feature-table columns, chosen by parameters: each sensor's deviation
from its trailing median (``__median_resid_12h``, in units of the fitted scale) and its run of exact
repeats (``__repeat_run``). Both are computed by the shared window-feature code, so the edge runtime
computes them too. Everything that turns them into a score is one scikit-learn Pipeline, so
skl2onnx exports it whole and the edge needs no extra transform:

- median residuals -> StandardScaler -> PCA(whiten=True): departures in directions healthy data
  rarely move in stand out. Absolute levels (which move with degradation and drift) never reach
  the detector, and a median, unlike a mean, is not dragged by the fault itself, so the rows just
  after a spike or an upset look normal again;
- repeat runs -> Binarizer(threshold) -> StandardScaler: 1 while the reading repeats exactly
  (stuck sensors, dropouts held at the floor), 0 otherwise; scaling by the healthy rows' rate of
  repeats makes a rare repeat as loud as a large departure;
- then the detector (IsolationForest, OneClassSVM, or PCA T²+Q: Hotelling's T² in the retained
  principal components plus the squared reconstruction error Q, see ``pca_detector``; its residual
  block is rotated but never whitened, which would erase the variances T² and Q tell apart);
  anomaly score = -decision_function(X).
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from sklearn.compose import ColumnTransformer
from sklearn.decomposition import PCA
from sklearn.ensemble import IsolationForest
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import Binarizer, StandardScaler
from sklearn.svm import OneClassSVM

from pdm_kedro import contract as c
from pdm_kedro.core.window_features import median_residual_suffix
from pdm_kedro.evaluation.threshold_rule import (
    apply_threshold_rule,
    f1_score_binary,
    fit_threshold_rule,
)
from pdm_kedro.fleet import parse_machine
from pdm_kedro.promotion import row_scorer

from .pca_detector import PcaT2QDetector

logger = logging.getLogger(__name__)

FAMILY = "anomaly"
LABEL = c.ANOMALY
ISOLATION_FOREST = "isolation_forest"
ONE_CLASS_SVM = "one_class_svm"
PCA_T2Q = "pca_t2q"
DETECTORS = (ISOLATION_FOREST, ONE_CLASS_SVM, PCA_T2Q)
MEDIAN_RESIDUAL = "median_residual"  # anomaly.inputs.signal
ZSCORE = "zscore"
METRIC_NAMES = ("precision", "recall", "f1", "false_alarm_rate", "missed_alarm_rate")


def select_detector_inputs(
    machine: dict[str, Any], params: dict[str, Any], features: dict[str, Any]
) -> dict[str, Any]:
    """The detector's input columns, in order: one signal per sensor, then one repeat run each.

    ``inputs.signal`` picks the signal: ``median_residual`` (default; its column is derived from
    the feature windows, the middle window's median residual, never configured by hand) or
    ``zscore`` (the reading's level against the train baseline, ``__zscore``: what the published
    PCA T²+Q reads on SKAB, where a valve fault holds a level for minutes and a residual from a
    36 s median forgets it). Returns ``{"feature_names": [...], "n_sensors": k}``.

    Raises:
        ValueError: an unknown ``inputs.signal``.
    """
    sensors = parse_machine(machine).sensor_names
    signal = params["inputs"].get("signal", MEDIAN_RESIDUAL)
    signals = {
        MEDIAN_RESIDUAL: median_residual_suffix(features["windows_hours"]),
        ZSCORE: "__zscore",
    }
    if signal not in signals:
        raise ValueError(
            f"{parse_machine(machine).machine_id}: anomaly.inputs.signal must be one of "
            f"{sorted(signals)}: {signal!r}"
        )
    suffixes = [signals[signal], params["inputs"]["repeat_suffix"]]
    return {
        "feature_names": [f"{s}{suffix}" for suffix in suffixes for s in sensors],
        "n_sensors": len(sensors),
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


def build_preprocessor(
    inputs: dict[str, Any], params: dict[str, Any], whiten: bool | None = None
) -> ColumnTransformer:
    """Residuals -> scaler + (whitened) PCA; repeat runs -> repeating (1) / moving (0), scaled.

    ``whiten`` overrides ``preprocessing.whiten`` (PCA T²+Q reads unwhitened residuals).
    """
    prep = params["preprocessing"]
    whiten = bool(prep["whiten"]) if whiten is None else whiten
    k = inputs["n_sensors"]
    return ColumnTransformer(
        [
            (
                "residual",
                Pipeline(
                    [
                        ("scale", StandardScaler()),
                        (
                            "whiten",
                            PCA(whiten=whiten, random_state=int(params["seed"])),
                        ),
                    ]
                ),
                list(range(k)),
            ),
            (
                "repeats",
                make_pipeline(
                    Binarizer(threshold=float(prep["repeat_threshold"])), StandardScaler()
                ),
                list(range(k, 2 * k)),
            ),
        ]
    )


def floor_repeat_scale(prepare: ColumnTransformer, min_rate: float) -> None:
    """Keep a repeat loud even when the healthy rows hardly ever repeat.

    The repeat indicator is scaled by its healthy standard deviation ``sqrt(p (1 - p))``; with
    ``p`` near 0 (or exactly 0, where scikit-learn falls back to 1) a stuck sensor would barely
    move the score. The scale is floored at the value for ``p = min_rate``; it stays a stock
    StandardScaler, so the ONNX export is unchanged.
    """
    scaler = prepare.named_transformers_["repeats"].steps[-1][1]
    floor = np.sqrt(min_rate * (1.0 - min_rate))
    no_spread = scaler.var_ <= 0
    scaler.scale_ = np.where(no_spread | (scaler.scale_ < floor), floor, scaler.scale_)


def _fit_detector(
    healthy: pd.DataFrame,
    inputs: dict[str, Any],
    detector: Any,
    rows: int,
    params: dict[str, Any],
    whiten: bool | None = None,
) -> Pipeline:
    """Fit preprocessing + ``detector`` on the first ``rows`` healthy rows of the seeded draw."""
    x = detector_matrix(healthy, inputs["feature_names"])[:rows]
    prepare = build_preprocessor(inputs, params, whiten=whiten).fit(x)
    floor_repeat_scale(prepare, float(params["preprocessing"]["min_repeat_rate"]))
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


def fit_pca_t2q(healthy: pd.DataFrame, inputs: dict[str, Any], params: dict[str, Any]) -> Pipeline:
    """PCA T²+Q (components by explained variance, seeded) on healthy training rows.

    The residual block is standardised and rotated but not whitened: whitening every component
    would give all directions the same variance, and T² (along the healthy components) and Q (off
    them) could no longer tell a large healthy movement from an unusual one.
    """
    settings = dict(params["detectors"][PCA_T2Q])
    rows = int(settings.pop("fit_rows"))
    detector = PcaT2QDetector(**settings, random_state=int(params["seed"]))
    return _fit_detector(healthy, inputs, detector, rows, params, whiten=False)


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


BEST_F1 = "best_f1_on_val"
NORMAL_FAR = "normal_far"
LEADING_WINDOW = "leading_window"


def threshold_rule(y_val: np.ndarray, params: dict[str, Any]) -> str:
    """The threshold rule in force: the configured one, ``auto`` resolved by val's labels.

    Raises:
        ValueError: ``best_f1_on_val`` asked for while val holds no anomaly (or no normal row).
    """
    rule = dict(params.get("threshold") or {}).get("rule", BEST_F1)
    y = np.asarray(y_val).astype(bool)
    both = bool(y.any() and (~y).any())
    if rule == "auto":
        return BEST_F1 if both else NORMAL_FAR
    if rule == BEST_F1 and not both:
        raise ValueError(
            f"anomaly.threshold.rule {BEST_F1!r} needs anomalous and normal rows in val; val has "
            f"{int(y.sum())} anomalous of {y.size}: use rule {NORMAL_FAR!r} (or auto)"
        )
    if rule not in (BEST_F1, NORMAL_FAR, LEADING_WINDOW):
        raise ValueError(
            f"anomaly.threshold.rule must be auto, {BEST_F1}, {NORMAL_FAR} or {LEADING_WINDOW}: "
            f"{rule!r}"
        )
    return rule


def normal_far_threshold(scores_normal: np.ndarray, target_far: float) -> float:
    """The threshold (flag = score >= threshold) flagging ``target_far`` of the normal rows."""
    scores = np.sort(np.asarray(scores_normal, dtype=np.float64))
    if scores.size == 0:
        raise ValueError("normal_far threshold: val holds no normal row")
    # the smallest threshold with at most target_far of the normal rows at or above it
    allowed = int(np.floor(target_far * scores.size))
    if allowed <= 0:
        return float(np.nextafter(scores[-1], np.inf))
    return float(scores[scores.size - allowed])


def choose_detector(
    isolation_forest: Pipeline,
    one_class_svm: Pipeline,
    pca_t2q: Pipeline,
    features_val: pd.DataFrame,
    inputs: dict[str, Any],
    params: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Detector and threshold by the configured rule (``anomaly.threshold``).

    - ``best_f1_on_val``: each detector's val F1 at its own best val threshold; the highest wins
      (detectors listed in ``threshold.candidates``, default all three).
    - ``normal_far``: no labelled anomaly needed: the threshold is the quantile of the scores of
      val's normal rows that flags ``target_far`` of them; the detector is
      ``detector_without_labels`` (nothing in the data can rank detectors).

    Returns ``{"detector", "threshold", "rule", "candidates": {name: {"val_f1", "threshold"}}}``.
    """
    params = params or {}
    settings = dict(params.get("threshold") or {})
    y_val = features_val[LABEL].to_numpy()
    rule = threshold_rule(y_val, params)
    per_episode = rule == LEADING_WINDOW
    if per_episode:  # per-episode thresholds come later; the global one: normal_far
        rule = NORMAL_FAR
    fitted = {ISOLATION_FOREST: isolation_forest, ONE_CLASS_SVM: one_class_svm, PCA_T2Q: pca_t2q}
    names = list(settings.get("candidates") or DETECTORS)
    unknown = sorted(set(names) - set(DETECTORS))
    without_labels = settings.get("detector_without_labels", ISOLATION_FOREST)
    if unknown or without_labels not in DETECTORS:
        raise ValueError(
            f"anomaly.threshold: unknown detector(s) {unknown or [without_labels]}; "
            f"the family's detectors are {list(DETECTORS)}"
        )
    if rule != BEST_F1 and without_labels not in names:
        names.append(without_labels)
    estimators = [(name, fitted[name]) for name in names]
    candidates = {}
    for name, estimator in estimators:
        scores = anomaly_scores(estimator, features_val, inputs["feature_names"])
        if rule == BEST_F1:
            threshold, f1 = best_f1_threshold(y_val, scores)
        else:
            target = float(settings.get("target_far", 0.05))
            threshold = normal_far_threshold(scores[y_val == 0], target)
            flags = scores >= threshold
            f1 = f1_score_binary(y_val.astype(bool), flags)
            candidates[name] = {
                "val_f1": f1,
                "threshold": threshold,
                "val_far": float(np.mean(flags[y_val == 0])),
                "target_far": target,
            }
            continue
        candidates[name] = {"val_f1": f1, "threshold": threshold}
    if rule == BEST_F1:
        winner = max(candidates, key=lambda name: candidates[name]["val_f1"])
        why = "the higher val F1"
    else:
        winner = without_labels
        why = "configured (val has no anomalies to rank detectors by)"
    logger.info("anomaly: %s (%s), threshold rule %s", winner, why, rule)
    return {
        "detector": winner,
        "threshold": candidates[winner]["threshold"],
        "rule": LEADING_WINDOW if per_episode else rule,
        "why": why,
        "candidates": candidates,
    }


def package_anomaly_model(
    isolation_forest: Pipeline,
    one_class_svm: Pipeline,
    pca_t2q: Pipeline,
    selection: dict[str, Any],
    inputs: dict[str, Any],
) -> dict[str, Any]:
    """The family's model artefact (contract): the chosen detector, its inputs and threshold."""
    estimator = {ISOLATION_FOREST: isolation_forest, ONE_CLASS_SVM: one_class_svm, PCA_T2Q: pca_t2q}
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


def episode_thresholds(
    model: dict[str, Any], features_train: pd.DataFrame, params: dict[str, Any]
) -> dict[str, Any]:
    """Per-episode calibration on each episode's leading normal window (SKAB's protocol).

    With ``anomaly.threshold.rule: leading_window``, every episode's threshold is the
    ``(1 - target_far)`` quantile of the scores of its own train rows (a ``time`` split's leading
    ``train_rows``: normal operation by the source's protocol); no labelled anomaly is used. The
    model's single ``threshold`` (edge bundle, promotion) stays the fleet-wide rule's. Returns the
    model unchanged for any other rule.
    """
    settings = dict(params.get("threshold") or {})
    if settings.get("rule") != LEADING_WINDOW:
        return model
    target = float(settings.get("target_far", 0.05))
    scores = anomaly_scores(model["estimator"], features_train, model["feature_names"])
    normal = features_train[LABEL].to_numpy() == 0
    episodes = features_train[c.EPISODE].to_numpy()
    per = {
        str(int(e)): normal_far_threshold(scores[(episodes == e) & normal], target)
        for e in np.unique(episodes[normal])
    }
    logger.info("anomaly: leading-window thresholds for %d episodes", len(per))
    return {**model, "episode_thresholds": per, "episode_threshold_target_far": target}


def score_test_rows(model: dict[str, Any], features_test: pd.DataFrame) -> pd.DataFrame:
    """Test rows with the label, the anomaly score and the flag at the model's threshold (or,
    calibrated per episode, at the episode's own threshold; episodes without one: the model's)."""
    scores = anomaly_scores(model["estimator"], features_test, model["feature_names"])
    out = features_test[[c.TIMESTAMP, c.EPISODE, LABEL]].copy()
    out["score"] = scores
    threshold = np.full(len(out), float(model["threshold"]))
    per = model.get("episode_thresholds")
    if per:
        mapped = out[c.EPISODE].astype(int).astype(str).map(per)
        threshold = mapped.fillna(float(model["threshold"])).to_numpy(dtype=np.float64)
    out["flag"] = (scores >= threshold).astype(np.int8)
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
        "tracked_by_family": True,  # logs its own MLflow metrics (mlflow_metrics output)
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
        "threshold_rule": {
            "rule": selection.get("rule", BEST_F1),
            "why_detector": selection.get("why", "the higher val F1"),
            **{k: v for k, v in dict(params.get("threshold") or {}).items() if k != "rule"},
        },
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


def promotion_metrics(model: dict[str, Any], frame: pd.DataFrame) -> dict[str, float]:
    """F1 and false-alarm rate of one detector at its own threshold on the evaluation rows."""
    scores = anomaly_scores(model["estimator"], frame, model["feature_names"])
    figures = detection_metrics(frame[LABEL].to_numpy(), scores >= model["threshold"])
    return {"f1": figures["f1"], "false_alarm_rate": figures["false_alarm_rate"]}


# both models on the evaluation rows, the champion on its own features (pdm_kedro.promotion)
score_for_promotion = row_scorer(promotion_metrics, LABEL)
