"""The anomaly family's PCA T²+Q detector on the edge: ONNX parity on every test row, and the edge
runtime's answer equal to the native score."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from pdm_kedro import contract as c
from pdm_kedro.edge.bundle import load_bundle
from pdm_kedro.edge.runtime import predict
from pdm_kedro.pipelines.anomaly import nodes as anomaly
from pdm_kedro.pipelines.edge_export.converters import run_onnx
from pdm_kedro.pipelines.edge_export.nodes import check_onnx_parity, export_to_onnx
from tests.edge.readings_helpers import as_readings, episode_rows

from .helpers import export_bundle


def _t2q_model(tiny_features, machine, tiny_params, combine: str) -> dict:
    params = copy.deepcopy(tiny_params["anomaly"])
    params["healthy"]["max_rows"] = 1500
    params["detectors"]["pca_t2q"] |= {"fit_rows": 1200, "combine": combine}
    inputs = anomaly.select_detector_inputs(machine, params, tiny_params["features"])
    healthy = anomaly.sample_healthy_rows(tiny_features["train"], params)
    estimator = anomaly.fit_pca_t2q(healthy, inputs, params)
    scores = anomaly.anomaly_scores(estimator, tiny_features["val"], inputs["feature_names"])
    return {
        "family": "anomaly",
        "estimator": estimator,
        "feature_names": inputs["feature_names"],
        "threshold": float(np.quantile(scores, 0.97)),
        "detector": "pca_t2q",
        "input_transform": None,
    }


@pytest.fixture(scope="module")
def t2q_models(tiny_models, tiny_features, machine, tiny_params) -> dict:
    return {**tiny_models, "anomaly": _t2q_model(tiny_features, machine, tiny_params, "sum")}


@pytest.mark.parametrize("combine", ["sum", "max"])
def test_parity_on_every_test_row(combine, tiny_features, machine, tiny_params):
    model = _t2q_model(tiny_features, machine, tiny_params, combine)
    graph = export_to_onnx(model, machine, tiny_params["edge_export"])
    test = tiny_features["test"]
    report = check_onnx_parity(model, graph, test, machine, tiny_params["edge_export"])
    assert report["passed"] and report["rows"] == len(test)
    assert report["mismatched_decisions"] == 0
    assert report["max_abs_diff"] <= 1e-5
    # the label output is the native predict (1 inlier, -1 outlier)
    x = test[model["feature_names"]].to_numpy(dtype=np.float32)
    labels = run_onnx(graph, x, "label").reshape(-1)
    native = model["estimator"].predict(x)
    assert (native == -1).any() and (native == 1).any()
    np.testing.assert_array_equal(labels, native)


def test_edge_runtime_answers_with_the_native_score(
    t2q_models, tiny_features, tiny_splits, tiny_baselines, machine, tiny_params, tmp_path
):
    folder = tmp_path / machine["machine_id"] / "edge"
    folder.mkdir(parents=True)
    manifest = export_bundle(
        t2q_models, tiny_features, tiny_baselines, machine, tiny_params, folder
    )
    assert manifest["models"]["anomaly"]["detector"] == "pca_t2q"
    raw = tiny_splits[2]
    episode_id = raw[c.EPISODE].value_counts().idxmax()
    episode = episode_rows(raw, episode_id)
    sensors = [s["name"] for s in manifest["sensors"]]
    answer = predict(
        load_bundle(folder),
        as_readings(episode, sensors),
        all_rows=True,
        from_episode_start=True,
    )["anomaly"]
    test = tiny_features["test"]
    rows = test[test[c.EPISODE] == episode_id].sort_values(c.TIMESTAMP, kind="stable")
    model = t2q_models["anomaly"]
    native = anomaly.anomaly_scores(model["estimator"], rows, model["feature_names"])
    assert len(answer["score"]) == len(native)
    np.testing.assert_allclose(answer["score"], native, atol=1e-5)
    assert answer["detector"] == "pca_t2q"
    np.testing.assert_array_equal(answer["flag"], native >= model["threshold"])
