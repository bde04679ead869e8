"""The measured ceiling: the same model kind trained on the simulator's hidden state.

A reference, never a model: the ceiling nodes are the only nodes that read the hidden state
(``<machine>.hidden_state_<split>``: latent wear, failure mode, hours since the repair), and what
they return goes into the metrics documents only (``ceiling`` beside ``value`` and ``baseline``).
The rules are those of the real models: trees on train, early stopping and the decision
threshold on val, test only scored, on exactly the rows of the feature tables.

A machine without hidden state (a user's own files) gets ``{"available": False}`` and its
metric rows an empty ceiling.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd
import xgboost as xgb

from pdm_kedro import contract as c
from pdm_kedro.evaluation.classification_metrics import (
    best_f1_threshold,
    ranking_metrics,
    threshold_metrics,
)
from pdm_kedro.evaluation.model_inputs import refit_settings, xgboost_settings
from pdm_kedro.evaluation.regression_metrics import regression_metrics

logger = logging.getLogger(__name__)

# The hidden-state columns the ceiling models see (the failure mode does not move the timing).
CEILING_INPUTS = ("latent_wear", "hours_since_repair")
KEYS = [c.TIMESTAMP, c.EPISODE]


def hidden_inputs(features: pd.DataFrame, hidden: pd.DataFrame) -> np.ndarray | None:
    """The hidden-state inputs of the feature table's rows, in its order (None when absent).

    Raises ValueError when the hidden state lacks some of the table's rows.
    """
    if hidden is None or hidden.empty:
        return None
    keyed = features[KEYS].merge(
        hidden[[*KEYS, *CEILING_INPUTS]], on=KEYS, how="left", validate="one_to_one"
    )
    matrix = keyed[list(CEILING_INPUTS)].to_numpy(dtype=np.float32)
    if np.isnan(matrix).any():
        raise ValueError(
            f"hidden state lacks {int(np.isnan(matrix).any(axis=1).sum())} rows of the features"
        )
    return matrix


def _unavailable() -> dict[str, Any]:
    return {"available": False, "reason": "no simulator hidden state (not a simulated machine)"}


def _describe(estimator: Any) -> dict[str, Any]:
    return {
        "available": True,
        "inputs": list(CEILING_INPUTS),
        "estimator": type(estimator).__name__,
        "best_iteration": int(estimator.best_iteration),
        "fitted_on": "train (trees), val (early stopping, threshold); test only scored",
    }


def ceiling_classifier_metrics(
    features_train: pd.DataFrame,
    features_val: pd.DataFrame,
    features_test: pd.DataFrame,
    hidden_state_train: pd.DataFrame,
    hidden_state_val: pd.DataFrame,
    hidden_state_test: pd.DataFrame,
    params: dict[str, Any],
) -> dict[str, Any]:
    """Test F1, precision, recall, PR-AUC and ROC-AUC of XGBoost on the hidden state.

    Same settings as the family's classifier (``params`` is ``params:classification``), class
    weight from train, threshold maximising val F1.
    """
    label = c.FAILURE_WITHIN_HORIZON
    x_train = hidden_inputs(features_train, hidden_state_train)
    x_val = hidden_inputs(features_val, hidden_state_val)
    x_test = hidden_inputs(features_test, hidden_state_test)
    if x_train is None or x_val is None or x_test is None:
        return _unavailable()
    y_train = features_train[label].to_numpy(np.int8)
    y_val = features_val[label].to_numpy(np.int8)
    y_test = features_test[label].to_numpy(np.int8)
    positives = max(int(y_train.sum()), 1)
    estimator = xgb.XGBClassifier(
        **xgboost_settings(params), scale_pos_weight=(len(y_train) - positives) / positives
    )
    estimator.fit(x_train, y_train, eval_set=[(x_val, y_val)], verbose=False)
    threshold = best_f1_threshold(
        y_val, estimator.predict_proba(x_val)[:, 1], float(params["min_decision_threshold"])
    )["threshold"]
    p_test = estimator.predict_proba(x_test)[:, 1]
    metrics = {
        **threshold_metrics(y_test, p_test >= threshold),
        **ranking_metrics(y_test, p_test),
    }
    logger.info("classification ceiling: test F1 %.3f at %.3f", metrics["f1"], threshold)
    return {**_describe(estimator), "threshold": float(threshold), "metrics": metrics}


def ceiling_regressor_metrics(
    features_train: pd.DataFrame,
    features_val: pd.DataFrame,
    features_test: pd.DataFrame,
    hidden_state_train: pd.DataFrame,
    hidden_state_val: pd.DataFrame,
    hidden_state_test: pd.DataFrame,
    params: dict[str, Any],
) -> dict[str, Any]:
    """Test RMSE, MAE, R2 (capped RUL) of XGBoost on the hidden state, early-stopped on val."""
    cap = float(params["rul_cap_hours"])
    x_train = hidden_inputs(features_train, hidden_state_train)
    x_val = hidden_inputs(features_val, hidden_state_val)
    x_test = hidden_inputs(features_test, hidden_state_test)
    if x_train is None or x_val is None or x_test is None:
        return _unavailable()

    def target(frame: pd.DataFrame) -> np.ndarray:
        return np.minimum(frame[c.RUL].to_numpy(np.float64), cap)

    estimator = xgb.XGBRegressor(**xgboost_settings(params))
    estimator.fit(
        x_train, target(features_train), eval_set=[(x_val, target(features_val))], verbose=False
    )
    described = _describe(estimator)
    if params.get("refit_on_train_val", False):  # the same rule as the RUL model's final trees
        estimator = xgb.XGBRegressor(**refit_settings(params, described["best_iteration"]))
        estimator.fit(
            np.vstack([x_train, x_val]),
            np.concatenate([target(features_train), target(features_val)]),
            verbose=False,
        )
        described["fitted_on"] = (
            "train (tree count, early stopping on val), then train+val (trees); test only scored"
        )
    predicted = np.clip(estimator.predict(x_test).astype(np.float64), 0.0, cap)
    metrics = regression_metrics(target(features_test), predicted)
    logger.info("regression ceiling: test RMSE %.1f h, R2 %.3f", metrics["rmse"], metrics["r2"])
    return {**described, "metrics": metrics}


def ceiling_values(ceiling: dict[str, Any] | None) -> dict[str, float]:
    """``{metric: value}`` of a ceiling document (empty when there is no ceiling)."""
    if not ceiling or not ceiling.get("available"):
        return {}
    return dict(ceiling["metrics"])
