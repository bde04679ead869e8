"""The RUL model learns the capped target: on a fixture where capping matters, it shows.

The tiny train episodes live at most about 150 h, below the project's 500 h cap, so capped and uncapped targets
are the same there. With a 40 h cap most train rows are capped: a regressor fitted on the capped
target answers at most about the cap before any clipping, one fitted on the raw RUL answers far
above it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pdm_kedro import contract as c
from pdm_kedro.evaluation.model_inputs import episode_age_hours, feature_matrix
from pdm_kedro.evaluation.regression_metrics import regression_metrics
from pdm_kedro.pipelines.regression import nodes as n

CAP = 40.0


@pytest.fixture(scope="module")
def capped_params(reg_params):
    return {**reg_params, "rul_cap_hours": CAP}


@pytest.fixture(scope="module")
def capped_model(tiny_features, capped_params):
    return n.train_rul_regressor(tiny_features["train"], tiny_features["val"], capped_params)


def test_capping_matters_on_this_fixture(tiny_features):
    rul = tiny_features["train"][c.RUL]
    assert (rul > CAP).mean() > 0.5 and rul.max() > 3 * CAP


def test_raw_predictions_stay_at_the_cap_before_clipping(capped_model, tiny_features):
    train = tiny_features["train"]
    raw = capped_model["estimator"].predict(feature_matrix(train, capped_model["feature_names"]))
    assert capped_model["rul_cap_hours"] == CAP
    assert raw.max() <= CAP * 1.1  # an uncapped fit reaches about 3 x the cap here
    # far from failure (true RUL >> cap) the model answers about the cap
    far = train[c.RUL].to_numpy() > 2 * CAP
    assert np.median(raw[far]) == pytest.approx(CAP, rel=0.1)
    # and it fits the capped target, not the raw one
    fitted = regression_metrics(n.capped_rul(train, CAP), raw)
    raw_target = regression_metrics(train[c.RUL].to_numpy(), raw)
    assert fitted["rmse"] < 0.25 * raw_target["rmse"]


def test_capped_rul_by_hand():
    frame = pd.DataFrame({c.RUL: [0.0, 59.0, 60.0, 61.0, 500.0]})
    np.testing.assert_array_equal(n.capped_rul(frame, 60), [0.0, 59.0, 60.0, 60.0, 60.0])


def test_predictions_are_clipped_to_zero_and_the_cap(capped_model, tiny_features):
    test = tiny_features["test"]
    pred = n.predict_rul(capped_model, test)
    raw = capped_model["estimator"].predict(feature_matrix(test, capped_model["feature_names"]))
    np.testing.assert_allclose(pred, np.clip(raw, 0.0, CAP))


def test_metrics_are_on_the_capped_target(capped_model, tiny_features, machine, capped_params):
    train, val, test = tiny_features["train"], tiny_features["val"], tiny_features["test"]
    baseline = n.fit_rul_baseline(train, val, capped_params)
    preds = n.predict_test_rul(capped_model, baseline, test)
    np.testing.assert_array_equal(preds["rul_capped"], np.minimum(test[c.RUL], CAP))
    metrics = n.evaluate_rul_model(capped_model, baseline, val, preds, test, machine, capped_params)
    expected = regression_metrics(np.minimum(test[c.RUL], CAP), preds["rul_predicted"])
    assert metrics["metrics"][0]["value"] == pytest.approx(expected["rmse"])
    assert metrics["target"] == "rul capped at 40 h"
    val_expected = regression_metrics(np.minimum(val[c.RUL], CAP), n.predict_rul(capped_model, val))
    assert metrics["val_metrics"]["model"]["rmse"] == pytest.approx(val_expected["rmse"])


def test_rul_baseline_by_hand(capped_params):
    # two train episodes living 10 h and 30 h: median life 20 h
    stamps = pd.to_datetime(["2024-01-01 00:00", "2024-01-01 05:00", "2024-01-02 00:00",
                             "2024-01-02 10:00", "2024-01-02 20:00"])  # fmt: skip
    train = pd.DataFrame(
        {c.TIMESTAMP: stamps, c.EPISODE: [1, 1, 2, 2, 2], c.RUL: [10.0, 5.0, 30.0, 20.0, 10.0]}
    )
    params = {**capped_params, "rul_cap_hours": 25.0}
    baseline = n.fit_rul_baseline(train, train, params)
    assert baseline["median_life_hours"] == pytest.approx(20.0)
    assert baseline["mean_capped_rul_hours"] == pytest.approx((10 + 5 + 25 + 20 + 10) / 5)
    assert baseline["fitted_on"] == {"split": "train", "episodes": 2}
    linear = n.predict_rul_baseline({**baseline, "kind": n.LINEAR}, train)
    np.testing.assert_allclose(linear, np.clip(20.0 - episode_age_hours(train), 0, 25.0))
    np.testing.assert_allclose(linear, [20.0, 15.0, 20.0, 10.0, 0.0])
    mean = n.predict_rul_baseline({**baseline, "kind": n.MEAN}, train)
    np.testing.assert_allclose(mean, 14.0)
    # the kind with the lower val RMSE is the baseline
    rmse = {
        kind: regression_metrics(np.minimum(train[c.RUL], 25.0), pred)["rmse"]
        for kind, pred in ((n.LINEAR, linear), (n.MEAN, mean))
    }
    assert baseline["val_rmse"] == pytest.approx(rmse)
    assert baseline["kind"] == min(rmse, key=rmse.get)
