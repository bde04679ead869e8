"""The decision threshold is the val-optimal one, and alarms follow it row by row."""

from __future__ import annotations

import numpy as np
import pytest

from pdm_kedro import contract as c
from pdm_kedro.evaluation.classification_metrics import (
    best_f1_threshold,
    ranking_metrics,
    threshold_metrics,
)
from pdm_kedro.pipelines.classification import nodes as n
from tests.conftest import TEST_MACHINE
from tests.pipelines.classification.test_pipeline import run_family

M = TEST_MACHINE
LABEL = c.FAILURE_WITHIN_HORIZON


@pytest.fixture(scope="module")
def run(tiny_features, machine, tiny_params, clf_params):
    """The family run with ``threshold_selection.method: val`` (the grouped-CV default pools
    train+val episodes; its leakage guard is tests/pipelines/test_leakage.py)."""
    params = {
        **clf_params,
        "threshold_selection": {**clf_params["threshold_selection"], "method": "val"},
    }
    _, catalog = run_family("classification", tiny_features, machine, tiny_params, params)
    return {
        name: catalog[f"{M}.classification.{name}"].load()
        for name in ("classifier", "decision_threshold", "model", "test_predictions", "metrics")
    }


def _best(classifier, frame, params):
    scores = n.failure_probability(classifier, frame)
    return best_f1_threshold(
        frame[LABEL].to_numpy(), scores, float(params["min_decision_threshold"])
    )


def test_threshold_is_the_val_optimal_one(run, tiny_features, clf_params):
    on_val = _best(run["classifier"], tiny_features["val"], clf_params)["threshold"]
    on_train = _best(run["classifier"], tiny_features["train"], clf_params)["threshold"]
    assert on_val != pytest.approx(on_train)  # the fixture tells the two apart
    assert run["decision_threshold"] == pytest.approx(on_val)
    assert run["model"]["threshold"] == pytest.approx(on_val)
    assert run["metrics"]["threshold"] == pytest.approx(on_val)


def test_alarms_and_test_metrics_follow_the_threshold(run, tiny_features):
    test = tiny_features["test"]
    preds = run["test_predictions"]
    proba = n.failure_probability(run["model"], test)
    np.testing.assert_allclose(preds["probability"], proba)
    alarm = proba >= run["model"]["threshold"]
    np.testing.assert_array_equal(preds["alarm"].to_numpy(), alarm.astype(np.int8))
    np.testing.assert_array_equal(preds[LABEL].to_numpy(), test[LABEL].to_numpy())
    values = {row["metric"]: row["value"] for row in run["metrics"]["metrics"]}
    y = test[LABEL].to_numpy()
    expected = {**threshold_metrics(y, alarm), **ranking_metrics(y, proba)}
    for name in ("f1", "precision", "recall", "pr_auc"):
        assert values[name] == pytest.approx(expected[name]), name


def test_minimum_threshold_is_respected(run, tiny_features, clf_params):
    scores = n.failure_probability(run["classifier"], tiny_features["val"])
    floor = float(np.quantile(scores, 0.995))  # above the val-optimal threshold, below the top
    assert floor > run["decision_threshold"]
    high = {**clf_params, "min_decision_threshold": floor}
    chosen = n.choose_decision_threshold(run["classifier"], tiny_features["val"], high)
    assert chosen >= floor
    assert chosen == pytest.approx(
        _best(run["classifier"], tiny_features["val"], high)["threshold"]
    )


def test_model_artefact(run, tiny_params):
    model = run["model"]
    assert model["family"] == "classification"
    assert model["feature_names"] == run["classifier"]["feature_names"]
    assert model["horizon_hours"] == float(tiny_params["labels"]["failure_horizon_hours"])
    assert type(model["estimator"]) is type(run["classifier"]["estimator"])


def test_class_weight_is_the_configured_one(run, tiny_params):
    assert run["classifier"]["scale_pos_weight"] == float(
        tiny_params["classification"]["scale_pos_weight"]
    )
