"""Helpers shared by the XGBoost families: model inputs, importances, episode age."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from pdm_kedro import contract as c
from pdm_kedro.contract import feature_columns

SECONDS_PER_HOUR = 3600.0


def select_feature_names(frame: pd.DataFrame, wanted: Sequence[str] | None = None) -> list[str]:
    """The model inputs: every feature column, or those of ``wanted`` that exist, in table order."""
    names = feature_columns(frame)
    if not wanted:
        return names
    chosen = [name for name in names if name in set(wanted)]
    if not chosen:
        raise ValueError("none of the configured feature columns exist in the feature table")
    return chosen


def feature_matrix(frame: pd.DataFrame, names: Sequence[str]) -> np.ndarray:
    """The float32 matrix XGBoost and ONNX expect (no column names reach the booster)."""
    return frame[list(names)].to_numpy(dtype=np.float32)


def failure_probability(model: dict[str, Any], features: pd.DataFrame) -> np.ndarray:
    """P(failure within the horizon) of every row, from a failure classifier's ``model``
    artefact (shared: the RUL answer respects that classifier's alarms)."""
    matrix = feature_matrix(features, model["feature_names"])
    return model["estimator"].predict_proba(matrix)[:, 1]


def failure_alarms(model: dict[str, Any], features: pd.DataFrame) -> np.ndarray:
    """The failure classifier's alarms: P(failure) at or above its chosen ``threshold``."""
    return failure_probability(model, features) >= float(model["threshold"])


def thread_budget() -> int:
    """Threads one model fit may use: ``OMP_NUM_THREADS`` when set (the fleet's Dask workers set
    1 each, as may a user on a shared machine), else every core this process may run on."""
    configured = os.environ.get("OMP_NUM_THREADS", "").strip()
    if configured.isdigit() and int(configured) > 0:
        return int(configured)
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def xgboost_settings(params: dict[str, Any]) -> dict[str, Any]:
    """XGBoost constructor arguments from a family's parameters (seeded).

    ``n_jobs`` null (or absent) is :func:`thread_budget`. The ``hist`` trees and their
    predictions are identical for any thread count (``tests/evaluation/test_model_inputs.py``),
    so the budget changes only the time a fit takes.
    """
    settings = dict(params["xgboost"])
    if settings.get("n_jobs") is None:
        settings["n_jobs"] = thread_budget()
    settings["random_state"] = int(params["seed"])
    settings["early_stopping_rounds"] = int(params["early_stopping_rounds"])
    return settings


def refit_settings(params: dict[str, Any], best_iteration: int) -> dict[str, Any]:
    """:func:`xgboost_settings` for a refit of the final trees on train+val: the number of trees
    early stopping chose on val (``best_iteration + 1``), no early stopping."""
    settings = xgboost_settings(params)
    settings.pop("early_stopping_rounds")
    settings["n_estimators"] = int(best_iteration) + 1
    return settings


def gain_importance(estimator: Any, names: Sequence[str]) -> pd.DataFrame:
    """``feature, importance`` (total gain, normalised to sum 1), most important first."""
    scores = estimator.get_booster().get_score(importance_type="total_gain")
    gains = np.array([scores.get(f"f{i}", 0.0) for i in range(len(names))], dtype=np.float64)
    total = gains.sum()
    frame = pd.DataFrame({"feature": list(names), "importance": gains / total if total else gains})
    return frame.sort_values("importance", ascending=False, kind="stable").reset_index(drop=True)


def episode_age_hours(frame: pd.DataFrame) -> np.ndarray:
    """Hours since the start of each row's episode (time since the last repair)."""
    stamps = pd.to_datetime(frame[c.TIMESTAMP])
    start = stamps.groupby(frame[c.EPISODE]).transform("min")
    return ((stamps - start).dt.total_seconds() / SECONDS_PER_HOUR).to_numpy(dtype=np.float64)
