"""Regression nodes and RUL metrics on the tiny fixtures."""

import numpy as np
import pytest
from matplotlib.figure import Figure

from pdm_kedro.evaluation.model_inputs import failure_probability
from pdm_kedro.evaluation.regression_metrics import nasa_scores, regression_metrics
from pdm_kedro.pipelines.regression import nodes as n


@pytest.fixture(scope="module")
def model(tiny_features, reg_params):
    return n.train_rul_regressor(tiny_features["train"], tiny_features["val"], reg_params)


@pytest.fixture(scope="module")
def baseline(tiny_features, reg_params):
    return n.fit_rul_baseline(tiny_features["train"], tiny_features["val"], reg_params)


def test_nasa_score_punishes_late_predictions_more():
    late, early = nasa_scores(np.array([100.0, 100.0]), np.array([120.0, 80.0]))
    assert late == pytest.approx(np.expm1(2.0)) and early == pytest.approx(np.expm1(20 / 13))
    assert late > early > 0
    assert nasa_scores(np.array([5.0]), np.array([5.0]))[0] == 0.0


def test_regression_metrics_on_a_known_case():
    m = regression_metrics(np.array([0.0, 10.0]), np.array([0.0, 20.0]))
    assert m["rmse"] == pytest.approx(np.sqrt(50)) and m["mae"] == 5.0
    assert m["r2"] == pytest.approx(1 - 100 / 50)
    assert regression_metrics(np.array([1.0, 2.0]), np.array([1.0, 2.0]))["r2"] == 1.0


def test_model_is_trained_on_the_capped_target(model, tiny_features, reg_params):
    cap = reg_params["rul_cap_hours"]
    assert model["family"] == "regression" and model["rul_cap_hours"] == cap
    assert model["estimator"].get_booster().feature_names is None
    pred = n.predict_rul(model, tiny_features["test"])
    assert pred.min() >= 0 and pred.max() <= cap


def test_baseline_is_fitted_on_train_and_chosen_on_val(baseline, tiny_features, reg_params):
    assert baseline["kind"] in (n.LINEAR, n.MEAN)
    assert baseline["val_rmse"][baseline["kind"]] == min(baseline["val_rmse"].values())
    assert baseline["fitted_on"]["episodes"] == tiny_features["train"]["episode_id"].nunique()
    linear = n.predict_rul_baseline({**baseline, "kind": n.LINEAR}, tiny_features["test"])
    assert linear.max() <= reg_params["rul_cap_hours"] and linear.min() >= 0


def test_metrics_stand_beside_the_baseline_on_the_capped_target(
    model, baseline, tiny_features, machine, reg_params
):
    preds = n.predict_test_rul(model, baseline, tiny_features["test"])
    assert preds["rul_capped"].max() <= reg_params["rul_cap_hours"]
    metrics = n.evaluate_rul_model(
        model, baseline, tiny_features["val"], preds, tiny_features["test"], machine, reg_params
    )
    names = [row["metric"] for row in metrics["metrics"]]
    assert names == [
        *("rmse", "mae", "r2", "nasa_score", "nasa_score_mean", "mae_last_100h"),
        *("answer_rmse", "answer_r2", "answer_mae_last_100h"),
    ]
    # without the classifier's alarms the answer is the model's value
    np.testing.assert_array_equal(preds["rul_answer"], preds["rul_predicted"])
    by_name = {row["metric"]: row for row in metrics["metrics"]}
    assert by_name["answer_rmse"]["value"] == by_name["rmse"]["value"]
    assert by_name["answer_rmse"]["baseline"] == by_name["rmse"]["baseline"]
    assert all(row["baseline_name"] == baseline["kind"] for row in metrics["metrics"])
    expected = regression_metrics(preds["rul_capped"], preds["rul_baseline"])
    assert metrics["metrics"][0]["baseline"] == pytest.approx(expected["rmse"])
    assert "capped" in metrics["target"]
    assert isinstance(n.plot_rul_predictions(preds, metrics), Figure)


def test_same_seed_gives_identical_predictions(model, tiny_features, reg_params):
    again = n.train_rul_regressor(tiny_features["train"], tiny_features["val"], reg_params)
    np.testing.assert_array_equal(
        n.predict_rul(again, tiny_features["test"]), n.predict_rul(model, tiny_features["test"])
    )


def test_near_failure_weights_cost_more_near_failure_and_are_optional():
    rul = np.array([0.0, 50.0, 450.0, 500.0])
    w = n.near_failure_weights(rul, 500.0, {"offset_hours": 50, "power": 0.5})
    np.testing.assert_allclose(w, np.sqrt(500.0 / (rul + 50.0)))
    assert np.all(np.diff(w) < 0) and w[0] == pytest.approx(np.sqrt(10.0))
    assert n.near_failure_weights(rul, 500.0, None) is None
    assert n.near_failure_weights(rul, 500.0, {"offset_hours": 50, "power": 0}) is None
    with pytest.raises(ValueError, match="offset_hours must be > 0"):
        n.near_failure_weights(rul, 500.0, {"offset_hours": 0, "power": 1})


def test_weighting_makes_the_last_hours_less_optimistic(tiny_features, reg_params):
    """Same data, same seed: with rows near failure weighted up, the mean error over the
    last hours before each failure of val does not grow (the point of the weighting)."""
    # val scores the trees here, so they are fitted on train only
    train_only = {**reg_params, "refit_on_train_val": False}
    plain = {**train_only, "near_failure_weighting": None}
    weighted = {**train_only, "near_failure_weighting": {"offset_hours": 10, "power": 1.0}}
    val = tiny_features["val"]
    near = n.near_failure_rows(val, 24.0)
    truth = n.capped_rul(val, reg_params["rul_cap_hours"])
    errors = []
    for params in (plain, weighted):
        model = n.train_rul_regressor(tiny_features["train"], val, params)
        errors.append(np.mean(np.abs(n.predict_rul(model, val) - truth)[near]))
    assert errors[1] < errors[0]


def test_refit_on_train_val_keeps_the_val_chosen_tree_count(tiny_features, reg_params):
    """The final trees learn from train+val with the number of trees early stopping chose on
    val; without the option they are the train-only trees (fitted_on says which)."""
    train, val = tiny_features["train"], tiny_features["val"]
    train_only = n.train_rul_regressor(train, val, {**reg_params, "refit_on_train_val": False})
    refit = n.train_rul_regressor(train, val, {**reg_params, "refit_on_train_val": True})
    assert train_only["fitted_on"] == "train" and refit["fitted_on"] == "train+val"
    assert refit["best_iteration"] == train_only["best_iteration"]
    trees = len(refit["estimator"].get_booster().get_dump())
    assert trees == refit["best_iteration"] + 1
    truth = n.capped_rul(val, reg_params["rul_cap_hours"])
    error = [np.mean(np.abs(n.predict_rul(m, val) - truth)) for m in (train_only, refit)]
    assert error[1] < error[0], "the refitted trees have seen val"
    again = n.train_rul_regressor(train, val, {**reg_params, "refit_on_train_val": True})
    np.testing.assert_array_equal(n.predict_rul(refit, val), n.predict_rul(again, val))


def test_the_rul_answer_respects_the_failure_alarm(
    model, baseline, tiny_features, machine, reg_params, tiny_models
):
    """Where the classifier alarms the RUL answer is at most ``cap_at_alarm_hours``; the model's
    own prediction and every model metric stay as they were; the answer's metrics are its own."""
    test = tiny_features["test"]
    plain = n.predict_test_rul(model, baseline, test)
    assert model["cap_at_alarm_hours"] == reg_params["cap_at_alarm_hours"] == 48.0
    classifier = tiny_models["classification"]
    probability = failure_probability(classifier, test)
    threshold = float(np.quantile(probability, 0.5))  # half the rows alarm
    alarm = probability >= threshold
    preds = n.predict_test_rul(model, baseline, test, {**classifier, "threshold": threshold})
    np.testing.assert_array_equal(preds["rul_predicted"], plain["rul_predicted"])
    expected = alarm & (plain["rul_predicted"].to_numpy() > 48.0)
    assert expected.any() and not expected.all()
    np.testing.assert_array_equal(preds["capped_by_alarm"], expected)
    np.testing.assert_array_equal(preds["rul_answer"][expected], 48.0)
    np.testing.assert_array_equal(preds["rul_answer"][~expected], plain["rul_predicted"][~expected])
    metrics = n.evaluate_rul_model(
        model, baseline, tiny_features["val"], preds, test, machine, reg_params
    )
    rows = {row["metric"]: row["value"] for row in metrics["metrics"]}
    y = preds["rul_capped"].to_numpy()
    assert rows["rmse"] == pytest.approx(regression_metrics(y, preds["rul_predicted"])["rmse"])
    assert rows["answer_rmse"] == pytest.approx(regression_metrics(y, preds["rul_answer"])["rmse"])
    assert metrics["answer"]["rows_capped"] == int(expected.sum()) > 0
    # a classifier that never alarms: the answer is the model's value
    never = n.predict_test_rul(model, baseline, test, {**classifier, "threshold": 2.0})
    np.testing.assert_array_equal(never["rul_answer"], plain["rul_predicted"])
