"""Anomaly family nodes on the tiny simulated feature tables."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.figure import Figure

from pdm_kedro import contract as c
from pdm_kedro.pipelines.anomaly.nodes import (
    METRIC_NAMES,
    anomaly_scores,
    best_f1_threshold,
    choose_detector,
    detection_metrics,
    evaluate_anomaly_model,
    fit_anomaly_rule,
    fit_isolation_forest,
    fit_one_class_svm,
    fit_pca_t2q,
    package_anomaly_model,
    plot_score_distribution,
    sample_healthy_rows,
    score_test_rows,
    select_detector_inputs,
)


@pytest.fixture(scope="module")
def params(project_params: dict) -> dict:
    """The configured anomaly parameters, with fitting sizes scaled to the tiny tables."""
    out = {**project_params["anomaly"]}
    out["healthy"] = {**out["healthy"], "max_rows": 1500}
    out["detectors"] = {
        name: {**settings, "fit_rows": 1200} for name, settings in out["detectors"].items()
    }
    return out


@pytest.fixture(scope="module")
def inputs(machine: dict, params: dict, tiny_params: dict) -> dict:
    return select_detector_inputs(machine, params, tiny_params["features"])


@pytest.fixture(scope="module")
def healthy(tiny_features: dict, params: dict):
    return sample_healthy_rows(tiny_features["train"], params)


@pytest.fixture(scope="module")
def detectors(healthy, inputs: dict, params: dict) -> dict:
    return {
        "isolation_forest": fit_isolation_forest(healthy, inputs, params),
        "one_class_svm": fit_one_class_svm(healthy, inputs, params),
        "pca_t2q": fit_pca_t2q(healthy, inputs, params),
    }


def test_detector_inputs_exist_in_block_order(machine, inputs, tiny_features):
    names = inputs["feature_names"]
    assert set(names) <= set(tiny_features["train"].columns)
    k = len(machine["sensors"])
    assert inputs["n_sensors"] == k and len(names) == 2 * k
    sensors = [s["name"] for s in machine["sensors"]]
    assert names[:k] == [f"{s}__median_resid_12h" for s in sensors]
    assert names[k:] == [f"{s}__repeat_run" for s in sensors]


def test_levels_never_reach_the_detector(detectors, inputs, tiny_splits, tiny_baselines, machine):
    """Shifting every reading of an episode (degradation, drift) leaves its scores alone."""
    from pdm_kedro.pipelines.feature_engineering.nodes import build_window_features

    val = tiny_splits[1]
    shifted = val.copy()
    for i, sensor in enumerate(machine["sensors"]):
        shifted[sensor["name"]] = val[sensor["name"]] + 0.5 * sensor["noise"] * (i + 1)
    names = inputs["feature_names"]
    original = build_window_features(val, tiny_baselines, machine)
    moved = build_window_features(shifted, tiny_baselines, machine)
    for estimator in detectors.values():
        np.testing.assert_allclose(
            anomaly_scores(estimator, moved, names),
            anomaly_scores(estimator, original, names),
            atol=5e-3,  # float32 rounding of the shifted inputs
        )


def test_a_stuck_sensor_is_scored_above_its_moving_self(detectors, inputs, tiny_features):
    """The SVM sees a repeat even if no healthy row repeats. (A forest can't split a column that
    is constant in its fitting rows, one reason the SVM usually wins on val.)"""
    rows = tiny_features["val"]
    rows = rows[rows[c.ANOMALY] == 0].head(50).copy()
    stuck = rows.copy()
    stuck[inputs["feature_names"][-1]] = 3.0  # the last sensor repeats its reading 3 times
    svm = detectors["one_class_svm"]
    names = inputs["feature_names"]
    assert np.all(anomaly_scores(svm, stuck, names) > anomaly_scores(svm, rows, names))


def test_healthy_rows_are_healthy_capped_and_seeded(tiny_features, params):
    train = tiny_features["train"]
    first = sample_healthy_rows(train, params)
    assert len(first) == min(params["healthy"]["max_rows"], int((train[c.ANOMALY] == 0).sum()))
    assert first[c.ANOMALY].eq(0).all()
    again = sample_healthy_rows(train, params)
    assert first.equals(again)
    other_seed = sample_healthy_rows(train, {**params, "seed": params["seed"] + 1})
    assert not first[c.TIMESTAMP].equals(other_seed[c.TIMESTAMP])


def test_healthy_rows_can_exclude_end_of_life(tiny_features, params):
    strict = {**params, "healthy": {**params["healthy"], "exclude_failure_horizon": True}}
    rows = sample_healthy_rows(tiny_features["train"], strict)
    assert rows[c.FAILURE_WITHIN_HORIZON].eq(0).all() and rows[c.ANOMALY].eq(0).all()


def test_best_f1_threshold_on_a_hand_example():
    y = np.array([0, 0, 1, 1, 0, 1])
    scores = np.array([0.1, 0.2, 0.9, 0.8, 0.85, 0.3])
    threshold, f1 = best_f1_threshold(y, scores)
    # flag >= 0.8 gives tp 2, fp 1, fn 1 -> F1 2/3; >= 0.3 gives tp 3, fp 1 -> 6/7
    assert threshold == pytest.approx(0.3)
    assert f1 == pytest.approx(6 / 7)


def test_best_f1_threshold_never_splits_ties():
    y = np.array([1, 0, 0])
    scores = np.array([0.5, 0.5, 0.1])
    threshold, f1 = best_f1_threshold(y, scores)
    assert threshold == pytest.approx(0.5)
    assert f1 == pytest.approx(2 / 3)


def test_detection_metrics_on_a_hand_example():
    y = np.array([1, 1, 1, 1, 0, 0, 0, 0, 0, 0])
    flags = np.array([1, 1, 1, 0, 1, 0, 0, 0, 0, 0])
    m = detection_metrics(y, flags)
    assert m["precision"] == pytest.approx(0.75)
    assert m["recall"] == pytest.approx(0.75)
    assert m["f1"] == pytest.approx(0.75)
    assert m["false_alarm_rate"] == pytest.approx(1 / 6)
    assert m["missed_alarm_rate"] == pytest.approx(0.25)


def test_detectors_are_seeded_and_rank_anomalies_higher(
    healthy, inputs, params, detectors, tiny_features
):
    val = tiny_features["val"]
    y = val[c.ANOMALY].to_numpy().astype(bool)
    for name, fit in (
        ("isolation_forest", fit_isolation_forest),
        ("one_class_svm", fit_one_class_svm),
        ("pca_t2q", fit_pca_t2q),
    ):
        scores = anomaly_scores(detectors[name], val, inputs["feature_names"])
        refit = anomaly_scores(fit(healthy, inputs, params), val, inputs["feature_names"])
        np.testing.assert_array_equal(scores, refit)
        # Probability that a random anomalous row outscores a random normal one (ROC AUC).
        auc = np.mean(scores[y][:, None] > scores[~y][None, :])
        assert auc > 0.75, (name, auc)


def test_choose_detector_keeps_the_better_val_f1(detectors, tiny_features, inputs):
    selection = choose_detector(*detectors.values(), tiny_features["val"], inputs)
    f1 = {k: v["val_f1"] for k, v in selection["candidates"].items()}
    assert selection["detector"] == max(f1, key=f1.get)
    assert selection["threshold"] == selection["candidates"][selection["detector"]]["threshold"]


def test_model_metrics_and_plot_follow_the_contract(
    detectors, tiny_features, inputs, machine, params
):
    selection = choose_detector(*detectors.values(), tiny_features["val"], inputs)
    model = package_anomaly_model(*detectors.values(), selection, inputs)
    assert model["family"] == "anomaly"
    assert model["detector"] == selection["detector"]
    assert model["feature_names"] == inputs["feature_names"]
    assert model["estimator"] is detectors[selection["detector"]]
    rule = fit_anomaly_rule(tiny_features["train"], tiny_features["val"], machine, params)
    assert rule["column"] in {s["name"] for s in machine["sensors"]}
    test = tiny_features["test"]
    scored = score_test_rows(model, test)
    assert len(scored) == len(test)
    np.testing.assert_array_equal(
        scored["flag"].to_numpy(), (scored["score"] >= model["threshold"]).astype(int)
    )
    metrics = evaluate_anomaly_model(scored, rule, test, selection, machine, params)
    assert metrics["family"] == "anomaly" and metrics["split"] == "test"
    assert metrics["n_rows"] == len(test)
    assert [row["metric"] for row in metrics["metrics"]] == list(METRIC_NAMES)
    for row in metrics["metrics"]:
        assert 0.0 <= row["value"] <= 1.0 and 0.0 <= row["baseline"] <= 1.0
        assert row["baseline_name"] == "single_row_threshold_rule"
    assert metrics["threshold"] == model["threshold"]
    assert set(metrics["val_metrics"]["detector_f1"]) == set(detectors)
    assert isinstance(plot_score_distribution(scored, metrics), Figure)


def test_stock_detectors_export_to_onnx_with_equal_scores(detectors, inputs, tiny_features):
    """The whole sklearn Pipeline (residual map included) converts with stock skl2onnx."""
    import onnxruntime as ort
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType

    x = tiny_features["val"][inputs["feature_names"]].to_numpy(dtype=np.float32)
    for name, estimator in detectors.items():
        if (
            name == "pca_t2q"
        ):  # a custom estimator: tests/pipelines/edge_export/test_pca_t2q_export.py
            continue
        graph = convert_sklearn(
            estimator,
            initial_types=[("features", FloatTensorType([None, x.shape[1]]))],
            target_opset={"": 17, "ai.onnx.ml": 3},
        )
        session = ort.InferenceSession(
            graph.SerializeToString(), providers=["CPUExecutionProvider"]
        )
        scores = session.run(["scores"], {"features": x})[0].reshape(-1)
        np.testing.assert_allclose(scores, estimator.decision_function(x), atol=1e-4)
