"""Will the machine fail within the horizon? An XGBoost classifier and its single-row baseline.

Fitting uses train (trees) and val (early stopping, decision threshold) only; test is scored.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd
import xgboost as xgb
from matplotlib.figure import Figure
from sklearn.metrics import precision_recall_curve

from pdm_kedro import contract as c
from pdm_kedro.evaluation.ceiling import ceiling_values
from pdm_kedro.evaluation.classification_metrics import (
    best_f1_threshold,
    confusion_counts,
    pr_auc,
    ranking_metrics,
    threshold_metrics,
)
from pdm_kedro.evaluation.events import (
    EVENT_METRICS,
    bootstrap_interval,
    episode_events,
    event_summary,
    records_interval,
)
from pdm_kedro.evaluation.model_inputs import (
    failure_probability,
    feature_matrix,
    gain_importance,
    refit_settings,
    select_feature_names,
    xgboost_settings,
)
from pdm_kedro.evaluation.report import metric_rows, with_event_rows, with_intervals
from pdm_kedro.evaluation.threshold_rule import apply_threshold_rule, fit_threshold_rule
from pdm_kedro.fleet import parse_machine
from pdm_kedro.promotion import row_scorer

logger = logging.getLogger(__name__)

FAMILY = "classification"
LABEL = c.FAILURE_WITHIN_HORIZON
BASELINE_NAME = "single_row_threshold_rule"
THRESHOLD_CHOICE = {
    "val": "val (max F1)",
    "grouped_cv": "out-of-fold F1 over train+val episodes (grouped CV)",
    "stratified_cv": "out-of-fold F1 over train+val rows (seeded folds stratified on the label)",
}


def fit_failure_rule(
    features_train: pd.DataFrame, machine: dict[str, Any], params: dict[str, Any]
) -> dict[str, Any]:
    """The baseline: the best single raw-sensor threshold for the label, fitted on train."""
    spec = parse_machine(machine)
    rule = fit_threshold_rule(
        features_train, spec.sensor_names, LABEL, int(params["baseline_quantiles"])
    )
    return {k: rule[k] for k in ("column", "direction", "threshold")}


def train_failure_classifier(
    features_train: pd.DataFrame, features_val: pd.DataFrame, params: dict[str, Any]
) -> dict[str, Any]:
    """XGBoost on train, class imbalance weighted, early-stopped on val (aucpr).

    Returns ``{"estimator", "feature_names", "scale_pos_weight", "best_iteration"}``.
    """
    names = select_feature_names(features_train, params.get("feature_columns"))
    y_train = features_train[LABEL].to_numpy(dtype=np.int8)
    positives = int(y_train.sum())
    weight = params.get("scale_pos_weight", "auto")
    if weight == "auto":
        weight = (len(y_train) - positives) / max(positives, 1)
    estimator = xgb.XGBClassifier(**xgboost_settings(params), scale_pos_weight=float(weight))
    estimator.fit(
        feature_matrix(features_train, names),
        y_train,
        eval_set=[(feature_matrix(features_val, names), features_val[LABEL].to_numpy(np.int8))],
        verbose=False,
    )
    logger.info(
        "classifier: %d features, best iteration %d, scale_pos_weight %.1f",
        len(names),
        estimator.best_iteration,
        weight,
    )
    return {
        "estimator": estimator,
        "feature_names": names,
        "scale_pos_weight": float(weight),
        "best_iteration": int(estimator.best_iteration),
    }


def choose_decision_threshold(
    classifier: dict[str, Any], features_val: pd.DataFrame, params: dict[str, Any]
) -> float:
    """The P(failure) threshold that maximises F1 on val (never on test)."""
    scores = failure_probability(classifier, features_val)
    best = best_f1_threshold(
        features_val[LABEL].to_numpy(), scores, float(params["min_decision_threshold"])
    )
    logger.info("decision threshold %.4f (val F1 %.3f)", best["threshold"], best["f1"])
    return best["threshold"]


def threshold_folds(
    pooled: pd.DataFrame, selection: dict[str, Any], seed: int
) -> tuple[np.ndarray, int]:
    """Fold of every train+val row for the threshold's cross-validation, and the fold count.

    Folds hold whole episodes. ``grouped_cv``: round robin over the episodes in time order.
    ``stratified_cv`` (snapshot tables, one row per episode): episodes shuffled with ``seed``
    and dealt per class of their label (an episode is positive if any of its rows is), so every
    fold keeps the label's rate.
    """
    episodes = pd.unique(pooled[c.EPISODE])
    folds = min(int(selection["folds"]), len(episodes))
    if selection["method"] == "stratified_cv":
        positive = pooled.groupby(c.EPISODE, sort=False)[LABEL].max().reindex(episodes)
        order = np.random.default_rng(seed).permutation(len(episodes))
        fold_of = {}
        for value in (0, 1):
            members = [episodes[i] for i in order if positive.iloc[i] == value]
            fold_of |= {episode: i % folds for i, episode in enumerate(members)}
    else:
        fold_of = {episode: i % folds for i, episode in enumerate(episodes)}
    return pooled[c.EPISODE].map(fold_of).to_numpy(), folds


def out_of_fold_probability(
    classifier: dict[str, Any],
    features_train: pd.DataFrame,
    features_val: pd.DataFrame,
    params: dict[str, Any],
) -> tuple[pd.DataFrame, np.ndarray]:
    """The train+val rows (train first) and each row's P(failure) from a classifier that never
    saw its episode: ``threshold_selection.folds`` groups of whole episodes
    (:func:`threshold_folds`); for each group a classifier with the family's settings and the
    final model's number of trees (its early-stopped ``best_iteration + 1``) is fitted on the
    other groups (every ``threshold_selection.row_stride``-th row: neighbouring readings add
    little but time) and scores every row of the held-out one. Test is never read."""
    selection = params["threshold_selection"]
    pooled = pd.concat([features_train, features_val], ignore_index=True)
    fold, folds = threshold_folds(pooled, selection, int(params["seed"]))
    y = pooled[LABEL].to_numpy(np.int8)
    x = feature_matrix(pooled, classifier["feature_names"])
    settings = refit_settings(params, classifier["best_iteration"])
    oof = np.zeros(len(pooled))
    thinned = np.arange(len(pooled)) % max(int(selection.get("row_stride", 1)), 1) == 0
    for k in range(folds):
        held = fold == k
        fit = ~held & thinned
        estimator = xgb.XGBClassifier(**settings, scale_pos_weight=classifier["scale_pos_weight"])
        estimator.fit(x[fit], y[fit], verbose=False)
        oof[held] = estimator.predict_proba(x[held])[:, 1]
    return pooled, oof


def choose_threshold_by_grouped_cv(
    classifier: dict[str, Any],
    features_train: pd.DataFrame,
    features_val: pd.DataFrame,
    params: dict[str, Any],
) -> float:
    """The P(failure) threshold that maximises the out-of-fold F1 over train+val episodes.

    A threshold tuned on the few val episodes does not carry over to unseen ones. Here every
    train+val row is scored by a classifier fitted without its episode
    (:func:`out_of_fold_probability`: round robin groups in time order for ``grouped_cv``,
    seeded and stratified on the label for ``stratified_cv``, the snapshot tables' choice). The
    threshold maximising F1 over all out-of-fold scores is the decision threshold (never below
    ``min_decision_threshold``). Test is never read. ``threshold_selection.method: val`` keeps
    the val-only choice.
    """
    selection = params.get("threshold_selection") or {"method": "val"}
    if selection["method"] == "val":
        return choose_decision_threshold(classifier, features_val, params)
    pooled, oof = out_of_fold_probability(classifier, features_train, features_val, params)
    best = best_f1_threshold(
        pooled[LABEL].to_numpy(np.int8), oof, float(params["min_decision_threshold"])
    )
    logger.info(
        "decision threshold %.4f (out-of-fold F1 %.3f over %d train+val episodes, %d folds, %s)",
        best["threshold"],
        best["f1"],
        pooled[c.EPISODE].nunique(),
        min(int(selection["folds"]), pooled[c.EPISODE].nunique()),
        selection["method"],
    )
    return best["threshold"]


def refit_failure_classifier(
    classifier: dict[str, Any],
    features_train: pd.DataFrame,
    features_val: pd.DataFrame,
    params: dict[str, Any],
) -> dict[str, Any]:
    """The final trees: with ``refit_on_train_val`` the classifier is fitted again on train+val
    with the number of trees early stopping chose on val (``best_iteration + 1``), the same
    settings and seed; without it, the train-only classifier unchanged.

    For tables of independent rows (snapshots) the val rows are as good training data as the
    train rows once the tree count and the threshold (out-of-fold over train+val) are chosen.
    Test is never read.
    """
    if not params.get("refit_on_train_val", False):
        return classifier
    pooled = pd.concat([features_train, features_val], ignore_index=True)
    names = classifier["feature_names"]
    settings = refit_settings(params, classifier["best_iteration"])
    estimator = xgb.XGBClassifier(**settings, scale_pos_weight=classifier["scale_pos_weight"])
    estimator.fit(feature_matrix(pooled, names), pooled[LABEL].to_numpy(np.int8), verbose=False)
    logger.info(
        "classifier refitted on train+val (%d rows, %d trees)",
        len(pooled),
        settings["n_estimators"],
    )
    return {**classifier, "estimator": estimator, "fitted_on": "train+val"}


def package_failure_model(
    classifier: dict[str, Any], threshold: float, labels: dict[str, Any]
) -> dict[str, Any]:
    """The ``model`` artefact of the contract: estimator, ordered features, threshold, horizon."""
    return {
        "family": FAMILY,
        "estimator": classifier["estimator"],
        "feature_names": list(classifier["feature_names"]),
        "threshold": float(threshold),
        "horizon_hours": float(labels["failure_horizon_hours"]),
    }


def predict_failures(model: dict[str, Any], features_test: pd.DataFrame) -> pd.DataFrame:
    """Per-row test predictions: ids, true label, P(failure) and the alarm at the threshold."""
    probability = failure_probability(model, features_test)
    out = features_test[[c.TIMESTAMP, c.EPISODE]].copy()
    out[LABEL] = features_test[LABEL].to_numpy(dtype=np.int8)
    out["probability"] = probability
    out["alarm"] = (probability >= model["threshold"]).astype(np.int8)
    return out


def _scores(y_true: np.ndarray, flags: np.ndarray, ranking: np.ndarray) -> dict[str, float]:
    return {**threshold_metrics(y_true, flags), **ranking_metrics(y_true, ranking)}


def evaluate_failure_model(
    model: dict[str, Any],
    classifier: dict[str, Any],
    baseline_rule: dict[str, Any],
    features_val: pd.DataFrame,
    test_predictions: pd.DataFrame,
    features_test: pd.DataFrame,
    machine: dict[str, Any],
    params: dict[str, Any],
    ceiling: dict[str, Any] | None = None,
    events: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Test metrics of the model beside the single-row rule on the same rows; val for reference.

    ``events`` (from :func:`assess_alarm_events`) adds the event-level rows and the bootstrap
    intervals (``value_lo`` / ``value_hi``).

    ``ceiling`` (from :func:`pdm_kedro.evaluation.ceiling.ceiling_classifier_metrics`) adds the
    hidden-state model's test figures as each row's ``ceiling``.

    The rule's ranking score for PR/ROC-AUC is the sensor reading itself (sign-flipped for a
    ``<=`` rule).
    """
    sign = 1.0 if baseline_rule["direction"] == ">=" else -1.0

    def rule_scores(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        flags = apply_threshold_rule(frame, baseline_rule)
        if baseline_rule["column"] is None:
            return flags, np.zeros(len(frame))
        reading = frame[baseline_rule["column"]].to_numpy(dtype=np.float64)
        return flags, np.nan_to_num(sign * reading, nan=-np.inf if sign > 0 else np.inf)

    y_test = test_predictions[LABEL].to_numpy()
    model_test = _scores(
        y_test, test_predictions["alarm"].to_numpy(), test_predictions["probability"]
    )
    rule_flags, rule_rank = rule_scores(features_test)
    rule_test = _scores(y_test, rule_flags, np.where(np.isfinite(rule_rank), rule_rank, 0.0))

    y_val = features_val[LABEL].to_numpy()
    p_val = failure_probability(model, features_val)
    model_val = _scores(y_val, p_val >= model["threshold"], p_val)
    val_flags, val_rank = rule_scores(features_val)
    rule_val = _scores(y_val, val_flags, np.where(np.isfinite(val_rank), val_rank, 0.0))

    rows = metric_rows(
        model_test, rule_test, BASELINE_NAME, ceiling_values(ceiling) if ceiling else None
    )
    if events and events.get("applies", True):
        rows = with_event_rows(rows, events, BASELINE_NAME)
    elif events:  # no alarm events (snapshots): the F1 / PR-AUC intervals only
        rows = with_intervals(rows, events["intervals"])
    estimator = model["estimator"]
    return {
        "machine_id": parse_machine(machine).machine_id,
        "family": FAMILY,
        "split": "test",
        "tracked_by_family": True,  # logs its own MLflow metrics (mlflow_metrics output)
        "n_rows": len(test_predictions),
        "positive_rate": float(np.mean(y_test)) if len(y_test) else float("nan"),
        "metrics": rows,
        "ceiling": ceiling,
        "events": events if events and events.get("applies", True) else None,
        **({"events_note": events["why"]} if events and not events.get("applies", True) else {}),
        "confusion_matrix": confusion_counts(y_test, test_predictions["alarm"].to_numpy()),
        "baseline_confusion_matrix": confusion_counts(y_test, rule_flags),
        "val_metrics": {"model": model_val, "baseline": rule_val},
        "baseline": baseline_rule,
        "model": {
            "estimator": type(estimator).__name__,
            "n_features": len(model["feature_names"]),
            "best_iteration": classifier["best_iteration"],
            "scale_pos_weight": classifier["scale_pos_weight"],
            "horizon_hours": model["horizon_hours"],
            "threshold_chosen_on": THRESHOLD_CHOICE[
                (params.get("threshold_selection") or {"method": "val"})["method"]
            ],
            "early_stopping_on": "val",
            "trees_fitted_on": "train+val" if params.get("refit_on_train_val") else "train",
            **{k: v for k, v in params["xgboost"].items()},
            "seed": int(params["seed"]),
        },
        "threshold": float(model["threshold"]),
        "plots": ["pr_curve.png", "confusion_matrix.png"],
    }


def assess_alarm_events(
    test_predictions: pd.DataFrame,
    features_test: pd.DataFrame,
    baseline_rule: dict[str, Any],
    machine: dict[str, Any],
    labels: dict[str, Any],
    params: dict[str, Any],
) -> dict[str, Any]:
    """Event-level test figures of the model and the single-row rule (see
    :mod:`pdm_kedro.evaluation.events`), and bootstrap intervals over test episodes for F1,
    PR-AUC and every event metric.

    Rows without a time to failure (a snapshot table: a failure label, no RUL) have no alarm
    events: the document then says so (``applies: false``) and holds only the F1 and PR-AUC
    intervals, over rows (each row is its own episode).
    """
    settings = params["events"]
    k = int(settings["sustained_readings"])
    n = int(settings.get("window_readings") or k)
    boot = settings["bootstrap"]
    hours_per_row = 1.0 / parse_machine(machine).rows_per_hour
    episode = features_test[c.EPISODE].to_numpy()
    if c.RUL not in features_test.columns:
        y = test_predictions[LABEL].to_numpy()
        alarm = test_predictions["alarm"].to_numpy()
        proba = test_predictions["probability"].to_numpy()
        resamples, seed, level = int(boot["resamples"]), int(boot["seed"]), float(boot["level"])
        return {
            "applies": False,
            "why": "no time to failure (no rul column): alarm events need one",
            "bootstrap": {"resamples": resamples, "seed": seed, "level": level, "over": "rows"},
            "intervals": {
                "f1": bootstrap_interval(
                    episode, lambda r: threshold_metrics(y[r], alarm[r])["f1"], resamples, seed,
                    level,
                ),
                "pr_auc": bootstrap_interval(
                    episode, lambda r: pr_auc(y[r], proba[r]), resamples,
                    seed, level,
                ),
            },
        }  # fmt: skip
    rul = features_test[c.RUL].to_numpy(np.float64)

    def records(alarm: np.ndarray) -> list[dict[str, Any]]:
        return episode_events(
            alarm,
            episode,
            rul,
            hours_per_row,
            float(labels["failure_horizon_hours"]),
            k,
            float(settings["warning_lead_hours"]),
            n,
        )

    model_records = records(test_predictions["alarm"].to_numpy())
    rule_records = records(apply_threshold_rule(features_test, baseline_rule))
    y = test_predictions[LABEL].to_numpy()
    alarm = test_predictions["alarm"].to_numpy()
    proba = test_predictions["probability"].to_numpy()
    resamples, seed, level = int(boot["resamples"]), int(boot["seed"]), float(boot["level"])
    intervals = {
        "f1": bootstrap_interval(
            episode, lambda r: threshold_metrics(y[r], alarm[r])["f1"], resamples, seed, level
        ),
        "pr_auc": bootstrap_interval(
            episode, lambda r: pr_auc(y[r], proba[r]), resamples, seed, level
        ),
        **{m: records_interval(model_records, m, resamples, seed, level) for m in EVENT_METRICS},
    }
    return {
        "sustained_readings": k,
        "window_readings": n,
        "warning_lead_hours": float(settings["warning_lead_hours"]),
        "horizon_hours": float(labels["failure_horizon_hours"]),
        "bootstrap": {"resamples": resamples, "seed": seed, "level": level, "over": "episodes"},
        "model": {"summary": event_summary(model_records), "episodes": model_records},
        "baseline": {"summary": event_summary(rule_records), "episodes": rule_records},
        "intervals": intervals,
    }


def plot_precision_recall(test_predictions: pd.DataFrame, metrics: dict[str, Any]) -> Figure:
    """Test precision-recall curve with the operating point at the val-chosen threshold."""
    fig = Figure(figsize=(5.5, 4.5))
    ax = fig.subplots()
    y = test_predictions[LABEL].to_numpy()
    if y.sum() > 0:
        precision, recall, _ = precision_recall_curve(y, test_predictions["probability"])
        ax.plot(recall, precision, label="XGBoost")
    values = {row["metric"]: row for row in metrics["metrics"]}
    ax.scatter(
        [values["recall"]["value"]],
        [values["precision"]["value"]],
        color="C3",
        zorder=3,
        label=f"threshold {metrics['threshold']:.2f}",
    )
    ax.scatter(
        [values["recall"]["baseline"]],
        [values["precision"]["baseline"]],
        marker="x",
        color="k",
        zorder=3,
        label="single-row rule",
    )
    ax.axhline(metrics["positive_rate"], color="grey", ls=":", label="prevalence")
    ax.set(xlabel="recall", ylabel="precision", xlim=(0, 1), ylim=(0, 1.02))
    ax.set_title(f"{metrics['machine_id']}: failure within horizon (test)", fontsize=9)
    ax.legend(fontsize=8, loc="lower left")
    fig.tight_layout()
    return fig


def plot_confusion_matrix(metrics: dict[str, Any]) -> Figure:
    """Test confusion matrix at the val-chosen threshold."""
    counts = metrics["confusion_matrix"]
    grid = np.array([[counts["tn"], counts["fp"]], [counts["fn"], counts["tp"]]])
    fig = Figure(figsize=(4.2, 3.8))
    ax = fig.subplots()
    ax.imshow(grid, cmap="Blues")
    for (i, j), value in np.ndenumerate(grid):
        ax.text(
            j,
            i,
            str(value),
            ha="center",
            va="center",
            color="white" if value > grid.max() / 2 else "black",
        )
    ax.set_xticks([0, 1], ["no alarm", "alarm"])
    ax.set_yticks([0, 1], ["healthy", "fails in horizon"])
    ax.set_title(f"{metrics['machine_id']} (test)", fontsize=9)
    fig.tight_layout()
    return fig


def rank_feature_importance(model: dict[str, Any]) -> pd.DataFrame:
    """``feature, importance`` of the classifier (normalised total gain)."""
    return gain_importance(model["estimator"], model["feature_names"])


def promotion_metrics(model: dict[str, Any], frame: pd.DataFrame) -> dict[str, float]:
    """Headline and guard metrics of one model on the evaluation rows: F1 at the model's own
    threshold, false-alarm rate (share of healthy rows alarmed) and Brier score (calibration)."""
    y = frame[LABEL].to_numpy().astype(int)
    proba = failure_probability(model, frame)
    alarms = proba >= model["threshold"]
    counts = confusion_counts(y, alarms)
    healthy = counts["fp"] + counts["tn"]
    return {
        "f1": threshold_metrics(y, alarms)["f1"],
        "false_alarm_rate": counts["fp"] / healthy if healthy else 0.0,
        "brier": float(np.mean((proba - y) ** 2)) if len(y) else float("nan"),
    }


# both models on the evaluation rows, the champion on its own features (pdm_kedro.promotion)
score_for_promotion = row_scorer(promotion_metrics, LABEL)
