"""Remaining useful life: an XGBoost regressor on the capped RUL and a linear-degradation baseline.

Fitting uses train (trees) and val (early stopping) only; test is scored. Every metric is on
the capped target ``min(rul, rul_cap_hours)``, the baseline's included.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd
import xgboost as xgb
from matplotlib.figure import Figure

from pdm_kedro import contract as c
from pdm_kedro.core.rul_answer import rul_at_alarm
from pdm_kedro.evaluation.ceiling import ceiling_values
from pdm_kedro.evaluation.events import bootstrap_interval
from pdm_kedro.evaluation.model_inputs import (
    episode_age_hours,
    failure_alarms,
    feature_matrix,
    gain_importance,
    refit_settings,
    select_feature_names,
    xgboost_settings,
)
from pdm_kedro.evaluation.protocol import LAST_CYCLE, declared_protocol, last_observed_rows
from pdm_kedro.evaluation.regression_metrics import regression_metrics
from pdm_kedro.evaluation.report import metric_rows, with_intervals
from pdm_kedro.fleet import parse_machine
from pdm_kedro.promotion import row_scorer

logger = logging.getLogger(__name__)

FAMILY = "regression"
LINEAR = "linear_degradation"
ANSWER = "rul_answer"  # test_predictions: the RUL as answered (capped while the alarm is on)
MEAN = "mean_capped_rul"


def capped_rul(frame: pd.DataFrame, cap_hours: float) -> np.ndarray:
    """The regression target: RUL in hours, capped at ``cap_hours``."""
    return np.minimum(frame[c.RUL].to_numpy(dtype=np.float64), float(cap_hours))


def fit_rul_baseline(
    features_train: pd.DataFrame, features_val: pd.DataFrame, params: dict[str, Any]
) -> dict[str, Any]:
    """The RUL baseline: linear degradation or the mean, fitted on train, picked on val.

    Linear degradation assumes every episode lives the median train episode life and predicts
    ``clip(median_life - age, 0, cap)``, age being the hours since the episode started (the last
    repair). The mean predictor always answers the mean capped train RUL. The one with the lower
    val RMSE is the baseline every test metric is compared with.
    """
    cap = float(params["rul_cap_hours"])
    life = episode_age_hours(features_train) + features_train[c.RUL].to_numpy(dtype=np.float64)
    lives = pd.Series(life).groupby(features_train[c.EPISODE].to_numpy()).max()
    baseline = {
        "kind": LINEAR,
        "median_life_hours": float(lives.median()) if len(lives) else cap,
        "mean_capped_rul_hours": float(capped_rul(features_train, cap).mean()),
        "rul_cap_hours": cap,
        "fitted_on": {"split": "train", "episodes": len(lives)},
    }
    y_val = capped_rul(features_val, cap)
    val_rmse = {
        kind: regression_metrics(
            y_val, predict_rul_baseline({**baseline, "kind": kind}, features_val)
        )["rmse"]
        for kind in (LINEAR, MEAN)
    }
    baseline["kind"] = min(val_rmse, key=val_rmse.get)
    baseline["val_rmse"] = val_rmse
    return baseline


def predict_rul_baseline(baseline: dict[str, Any], features: pd.DataFrame) -> np.ndarray:
    """The baseline's RUL prediction for every row (capped)."""
    if baseline["kind"] == MEAN:
        return np.full(len(features), baseline["mean_capped_rul_hours"])
    remaining = baseline["median_life_hours"] - episode_age_hours(features)
    return np.clip(remaining, 0.0, baseline["rul_cap_hours"])


def near_failure_weights(
    rul_capped: np.ndarray, cap_hours: float, weighting: dict[str, Any] | None
) -> np.ndarray | None:
    """Row weights that make errors near failure cost more: ``(cap / (rul + offset)) ** power``
    (``near_failure_weighting``: ``offset_hours``, ``power``; None or power 0: unweighted).

    Squared error on the capped target lets the many rows far from failure dominate, so the
    trees regress towards the mean and read optimistic in the last days, where a planner acts.
    """
    if not weighting or float(weighting.get("power", 0.0)) == 0.0:
        return None
    offset = float(weighting["offset_hours"])
    if offset <= 0:
        raise ValueError(
            f"regression.near_failure_weighting.offset_hours must be > 0 (got {offset})"
        )
    y = np.asarray(rul_capped, dtype=np.float64)
    return (float(cap_hours) / (y + offset)) ** float(weighting["power"])


def _optional_hours(value: Any) -> float | None:
    return None if value is None else float(value)


def train_rul_regressor(
    features_train: pd.DataFrame, features_val: pd.DataFrame, params: dict[str, Any]
) -> dict[str, Any]:
    """XGBoost on the capped RUL of train, early-stopped on val; the ``model`` artefact.

    With ``refit_on_train_val`` the final trees are fitted again on train+val
    (:func:`refit_rul_regressor`). Test is never read.
    """
    cap = float(params["rul_cap_hours"])
    names = select_feature_names(features_train, params.get("feature_columns"))
    y_train, y_val = capped_rul(features_train, cap), capped_rul(features_val, cap)
    weighting = params.get("near_failure_weighting")
    w_train = near_failure_weights(y_train, cap, weighting)
    w_val = near_failure_weights(y_val, cap, weighting)
    estimator = xgb.XGBRegressor(**xgboost_settings(params))
    estimator.fit(
        feature_matrix(features_train, names),
        y_train,
        sample_weight=w_train,
        eval_set=[(feature_matrix(features_val, names), y_val)],
        sample_weight_eval_set=None if w_val is None else [w_val],
        verbose=False,
    )
    logger.info(
        "RUL regressor: %d features, cap %.0f h, best iteration %d%s",
        len(names),
        cap,
        estimator.best_iteration,
        "" if w_train is None else ", rows near failure weighted up",
    )
    model = {
        "family": FAMILY,
        "estimator": estimator,
        "feature_names": names,
        "rul_cap_hours": cap,
        "cap_at_alarm_hours": _optional_hours(params.get("cap_at_alarm_hours")),
        "best_iteration": int(estimator.best_iteration),
        "fitted_on": "train",
    }
    return refit_rul_regressor(model, features_train, features_val, params)


def refit_rul_regressor(
    model: dict[str, Any],
    features_train: pd.DataFrame,
    features_val: pd.DataFrame,
    params: dict[str, Any],
) -> dict[str, Any]:
    """The final trees: with ``refit_on_train_val`` the regressor is fitted again on train+val
    (same near-failure weights, settings and seed) with the number of trees early stopping chose
    on val; without it, the train-only model unchanged (as
    :func:`pdm_kedro.pipelines.classification.nodes.refit_failure_classifier`)."""
    if not params.get("refit_on_train_val", False):
        return model
    pooled = pd.concat([features_train, features_val], ignore_index=True)
    cap = model["rul_cap_hours"]
    y = capped_rul(pooled, cap)
    estimator = xgb.XGBRegressor(**refit_settings(params, model["best_iteration"]))
    estimator.fit(
        feature_matrix(pooled, model["feature_names"]),
        y,
        sample_weight=near_failure_weights(y, cap, params.get("near_failure_weighting")),
        verbose=False,
    )
    logger.info(
        "RUL regressor refitted on train+val (%d rows, %d trees)",
        len(pooled),
        model["best_iteration"] + 1,
    )
    return {**model, "estimator": estimator, "fitted_on": "train+val"}


def predict_rul(model: dict[str, Any], features: pd.DataFrame) -> np.ndarray:
    """The model's RUL prediction (hours, clipped to ``[0, cap]``) for every row."""
    raw = model["estimator"].predict(feature_matrix(features, model["feature_names"]))
    return np.clip(raw.astype(np.float64), 0.0, model["rul_cap_hours"])


def predict_test_rul(
    model: dict[str, Any],
    baseline: dict[str, Any],
    features_test: pd.DataFrame,
    failure_model: dict[str, Any] | None = None,
) -> pd.DataFrame:
    """Per-row test predictions: ids, true capped RUL, model and baseline predictions, and the
    RUL answer (``rul_answer``: at most the model's ``cap_at_alarm_hours`` where the failure
    classifier (``failure_model``, its chosen threshold) alarms on the test row,
    :mod:`pdm_kedro.core.rul_answer`; ``capped_by_alarm``). Without ``failure_model`` (a machine
    without the classification family) the answer is the model's value."""
    out = features_test[[c.TIMESTAMP, c.EPISODE]].copy()
    out["rul_capped"] = capped_rul(features_test, model["rul_cap_hours"])
    out["rul_predicted"] = predict_rul(model, features_test)
    out["rul_baseline"] = predict_rul_baseline(baseline, features_test)
    if failure_model is None:
        alarm, cap = np.zeros(len(out), dtype=bool), None
    else:
        alarm, cap = failure_alarms(failure_model, features_test), model.get("cap_at_alarm_hours")
    out[ANSWER], out["capped_by_alarm"] = rul_at_alarm(out["rul_predicted"], alarm, cap)
    return out


def evaluate_rul_model(
    model: dict[str, Any],
    baseline: dict[str, Any],
    features_val: pd.DataFrame,
    test_predictions: pd.DataFrame,
    features_test: pd.DataFrame,
    machine: dict[str, Any],
    params: dict[str, Any],
    ceiling: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Test RMSE, MAE, R2 and NASA score (hours, capped target) beside the baseline's.

    The headline ``metrics`` follow the machine's declared scoring protocol
    (``source.protocol.rul``): every test row, or (``last_cycle``) one prediction per test unit at
    its last observed row against the capped truth; with ``last_cycle`` the every-row figures stay
    as ``all_rows_metrics``. The every-row figures carry the error over the last hours before
    failure and bootstrap intervals over test episodes; ``ceiling`` (from
    :func:`pdm_kedro.evaluation.ceiling.ceiling_regressor_metrics`) adds the hidden-state model's
    test figures as each row's ``ceiling``.
    """
    cap = model["rul_cap_hours"]
    protocol = declared_protocol(dict(machine))
    other = MEAN if baseline["kind"] == LINEAR else LINEAR
    scored = test_predictions.assign(
        rul_other_baseline=predict_rul_baseline({**baseline, "kind": other}, features_test)
    )
    near = rul_near_failure_and_intervals(test_predictions, features_test, params)

    def figures(
        rows: pd.DataFrame, *, every_row: bool
    ) -> tuple[list[dict[str, Any]], dict[str, float]]:
        y = rows["rul_capped"].to_numpy()
        model_m = regression_metrics(y, rows["rul_predicted"].to_numpy())
        baseline_m = regression_metrics(y, rows["rul_baseline"].to_numpy())
        other_m = regression_metrics(y, rows["rul_other_baseline"].to_numpy())
        if not every_row:
            return metric_rows(model_m, baseline_m, baseline["kind"]), other_m
        model_m |= near["values"]
        baseline_m |= near["baseline"]
        if ANSWER in rows:  # the RUL as answered (capped while the failure alarm is on)
            answer_m = regression_metrics(y, rows[ANSWER].to_numpy())
            model_m |= {f"answer_{k}": answer_m[k] for k in ("rmse", "r2")}
            model_m |= near["answer"]["values"]
            baseline_m |= {f"answer_{k}": baseline_m[k] for k in ("rmse", "r2", "mae_last_100h")}
        ceilings = ceiling_values(ceiling) if ceiling else None
        table = metric_rows(model_m, baseline_m, baseline["kind"], ceilings)
        return with_intervals(table, near["intervals"]), other_m

    all_rows, all_rows_other = figures(scored, every_row=True)
    if protocol["rul"] == LAST_CYCLE:
        headline_rows = last_observed_rows(scored)
        headline, headline_other = figures(headline_rows, every_row=False)
        secondary = {
            "all_rows_metrics": {
                "label": "every test row (secondary: not the declared protocol)",
                "n_rows": len(scored),
                "metrics": all_rows,
                "other_baselines": {other: all_rows_other},
            }
        }
        scored_on = f"the last observed row of each of the {len(headline_rows)} test units"
    else:
        headline_rows, headline, headline_other, secondary = scored, all_rows, all_rows_other, {}
        scored_on = "every test row"
    y_val = capped_rul(features_val, cap)
    return {
        "machine_id": parse_machine(machine).machine_id,
        "family": FAMILY,
        "split": "test",
        "tracked_by_family": True,  # logs its own MLflow metrics (mlflow_metrics output)
        "n_rows": len(headline_rows),
        "target": f"rul capped at {cap:g} h",
        "units": "hours (RMSE, MAE and the NASA score's d = predicted - true)",
        "protocol": {**protocol, "scored_on": scored_on},
        "metrics": headline,
        **secondary,
        "near_failure": {k: near[k] for k in ("near_failure_hours", "bootstrap")},
        "ceiling": ceiling,
        "other_baselines": {other: headline_other},
        "val_metrics": {
            # with the refit on train+val these are in-sample figures ("trees_fitted_on")
            "model": regression_metrics(y_val, predict_rul(model, features_val)),
            "baseline": regression_metrics(y_val, predict_rul_baseline(baseline, features_val)),
        },
        "baseline": baseline,
        "model": {
            "estimator": type(model["estimator"]).__name__,
            "n_features": len(model["feature_names"]),
            "best_iteration": model["best_iteration"],
            "rul_cap_hours": cap,
            "early_stopping_on": "val",
            "trees_fitted_on": model.get("fitted_on", "train"),
            **dict(params["xgboost"]),
            "seed": int(params["seed"]),
        },
        "threshold": None,
        "answer": {
            "rule": "while the failure classifier alarms, the RUL answer is at most "
            "cap_at_alarm_hours (the answer_* rows; the other rows are the RUL model's own)",
            "cap_at_alarm_hours": model.get("cap_at_alarm_hours"),
            "rows_capped": int(test_predictions["capped_by_alarm"].sum())
            if "capped_by_alarm" in test_predictions
            else 0,
        },
        "plots": ["rul_predicted_vs_true.png"],
    }


def near_failure_rows(features: pd.DataFrame, window_hours: float) -> np.ndarray:
    """Rows within ``window_hours`` of a failure (of an episode that ends in one)."""
    rul = features[c.RUL].to_numpy(np.float64)
    ends_in_failure = features.groupby(c.EPISODE)[c.RUL].transform("min").to_numpy() <= 1e-9
    return ends_in_failure & (rul <= window_hours)


def rul_near_failure_and_intervals(
    test_predictions: pd.DataFrame, features_test: pd.DataFrame, params: dict[str, Any]
) -> dict[str, Any]:
    """``mae_last_100h`` (MAE over the last ``near_failure_hours`` before each test failure) of
    the model and the baseline, and bootstrap intervals over test episodes for RMSE, R2 and it."""
    window = float(params["near_failure_hours"])
    boot = params["bootstrap"]
    near = near_failure_rows(features_test, window)
    y = test_predictions["rul_capped"].to_numpy()
    pred = test_predictions["rul_predicted"].to_numpy()
    base = test_predictions["rul_baseline"].to_numpy()

    def mae_near(rows: np.ndarray, predicted: np.ndarray) -> float:
        rows = rows[near[rows]]
        return float(np.mean(np.abs(predicted[rows] - y[rows]))) if len(rows) else float("nan")

    episode = features_test[c.EPISODE].to_numpy()
    everything = np.arange(len(y))
    answer = test_predictions[ANSWER].to_numpy() if ANSWER in test_predictions else None
    resamples, seed, level = int(boot["resamples"]), int(boot["seed"]), float(boot["level"])

    def interval(statistic):
        return bootstrap_interval(episode, statistic, resamples, seed, level)

    return {
        "values": {"mae_last_100h": mae_near(everything, pred)},
        "baseline": {"mae_last_100h": mae_near(everything, base)},
        "intervals": {
            "rmse": interval(lambda r: regression_metrics(y[r], pred[r])["rmse"]),
            "r2": interval(lambda r: regression_metrics(y[r], pred[r])["r2"]),
            "mae_last_100h": interval(lambda r: mae_near(r, pred)),
        },
        "answer": None
        if answer is None
        else {"values": {"answer_mae_last_100h": mae_near(everything, answer)}},
        "near_failure_hours": window,
        "bootstrap": {"resamples": resamples, "seed": seed, "level": level, "over": "episodes"},
    }


def plot_rul_predictions(test_predictions: pd.DataFrame, metrics: dict[str, Any]) -> Figure:
    """Predicted vs true capped RUL on test (model and baseline), with the identity line."""
    cap = metrics["model"]["rul_cap_hours"]
    fig = Figure(figsize=(5.5, 4.8))
    ax = fig.subplots()
    y = test_predictions["rul_capped"]
    ax.scatter(
        y,
        test_predictions["rul_baseline"],
        s=3,
        alpha=0.25,
        color="grey",
        label=f"baseline ({metrics['baseline']['kind']})",
    )
    ax.scatter(y, test_predictions["rul_predicted"], s=3, alpha=0.35, color="C0", label="XGBoost")
    ax.plot([0, cap], [0, cap], color="k", lw=1)
    values = {row["metric"]: row for row in metrics["metrics"]}
    ax.set(
        xlabel="true RUL (h, capped)",
        ylabel="predicted RUL (h)",
        xlim=(0, cap * 1.02),
        ylim=(0, cap * 1.02),
    )
    ax.set_title(
        f"{metrics['machine_id']} (test): R2 {values['r2']['value']:.2f}"
        f" vs {values['r2']['baseline']:.2f} baseline",
        fontsize=9,
    )
    ax.legend(fontsize=8, loc="upper left", markerscale=4)
    fig.tight_layout()
    return fig


def rank_feature_importance(model: dict[str, Any]) -> pd.DataFrame:
    """``feature, importance`` of the regressor (normalised total gain)."""
    return gain_importance(model["estimator"], model["feature_names"])


def promotion_metrics(model: dict[str, Any], frame: pd.DataFrame) -> dict[str, float]:
    """RMSE and mean NASA score (hours, capped target) of one model on the evaluation rows."""
    y = capped_rul(frame, model["rul_cap_hours"])
    figures = regression_metrics(y, predict_rul(model, frame))
    return {"rmse": figures["rmse"], "nasa_score_mean": figures["nasa_score_mean"]}


# both models on the evaluation rows, the champion on its own features (pdm_kedro.promotion)
score_for_promotion = row_scorer(promotion_metrics)
