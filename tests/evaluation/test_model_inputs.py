"""The XGBoost families' thread budget: it changes how long a fit takes, never what it learns."""

from __future__ import annotations

import os

import numpy as np
import pytest
import xgboost as xgb

from pdm_kedro.evaluation.model_inputs import thread_budget, xgboost_settings


def test_thread_budget_reads_omp_num_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert thread_budget() == 3
    monkeypatch.delenv("OMP_NUM_THREADS")
    assert thread_budget() == len(os.sched_getaffinity(0))
    monkeypatch.setenv("OMP_NUM_THREADS", "not a number")
    assert thread_budget() == len(os.sched_getaffinity(0))


def test_null_n_jobs_is_the_budget_and_a_number_is_kept(
    project_params: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    for family in ("classification", "regression"):
        params = project_params[family]
        assert params["xgboost"]["n_jobs"] is None, "the default is the process's budget"
        assert xgboost_settings(params)["n_jobs"] == 2
        pinned = {**params, "xgboost": {**params["xgboost"], "n_jobs": 1}}
        assert xgboost_settings(pinned)["n_jobs"] == 1


def _data(seed: int = 3) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(6000, 24)).astype(np.float32)
    x[rng.random(x.shape) < 0.01] = np.nan  # missing readings, as in the feature tables
    signal = x[:, 0] + 0.5 * x[:, 1] * x[:, 2] - np.abs(x[:, 3]) + rng.normal(0, 0.5, len(x))
    label = (signal > 1.0).astype(np.int8)
    return x, label, np.nan_to_num(signal * 50.0 + 200.0)


@pytest.mark.parametrize("family", ["classification", "regression"])
def test_one_and_two_threads_learn_the_same_trees(project_params: dict, family: str) -> None:
    """The families' own settings (subsampling, column sampling, early stopping on a val set):
    1 and 2 threads give bit-identical predictions and TreeSHAP contributions."""
    x, label, rul = _data()
    y = label if family == "classification" else rul
    train, val = slice(0, 4500), slice(4500, None)
    outputs = []
    for threads in (1, 2):
        params = project_params[family]
        settings = xgboost_settings({**params, "xgboost": {**params["xgboost"], "n_jobs": threads}})
        kind = xgb.XGBClassifier if family == "classification" else xgb.XGBRegressor
        model = kind(**settings)
        model.fit(x[train], y[train], eval_set=[(x[val], y[val])], verbose=False)
        booster = model.get_booster()
        outputs.append(
            (
                model.best_iteration,
                booster.predict(xgb.DMatrix(x[val]), output_margin=True),
                booster.predict(xgb.DMatrix(x[val]), pred_contribs=True),
            )
        )
    (it1, margin1, shap1), (it2, margin2, shap2) = outputs
    assert it1 == it2 and it1 > 0
    np.testing.assert_array_equal(margin1, margin2)
    np.testing.assert_array_equal(shap1, shap2)
