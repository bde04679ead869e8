"""Export nodes: ONNX conversion with metadata, parity checks that fail loudly, the manifest."""

from __future__ import annotations

import copy

import numpy as np
import onnxruntime as ort
import pytest
import xgboost as xgb

from pdm_kedro import contract as c
from pdm_kedro.pipelines.edge_export import nodes
from pdm_kedro.pipelines.edge_export.nodes import (
    EdgeParityError,
    build_edge_manifest,
    check_onnx_parity,
    describe_for_edge,
    export_to_onnx,
    required_history_rows,
)


@pytest.fixture(scope="module")
def exported(tiny_models, machine, tiny_params):
    return {
        family: export_to_onnx(model, machine, tiny_params["edge_export"])
        for family, model in tiny_models.items()
    }


def test_onnx_carries_machine_family_and_feature_order(exported, tiny_models, machine):
    for family, onnx_model in exported.items():
        session = ort.InferenceSession(onnx_model.SerializeToString())
        meta = session.get_modelmeta().custom_metadata_map
        assert meta["machine_id"] == machine["machine_id"]
        assert meta["family"] == family
        assert meta["feature_names"].startswith('["')
        assert session.get_inputs()[0].name == "features"
        assert session.get_inputs()[0].shape[1] == len(tiny_models[family]["feature_names"])


@pytest.mark.parametrize("family", ["classification", "regression", "anomaly"])
def test_parity_on_every_test_row(
    family, exported, tiny_models, tiny_features, machine, tiny_params
):
    report = check_onnx_parity(
        tiny_models[family], exported[family], tiny_features["test"], machine,
        tiny_params["edge_export"],
    )  # fmt: skip
    assert report["rows"] == len(tiny_features["test"])
    assert report["mismatched_decisions"] == 0
    limit = {"classification": 1e-4, "regression": 1e-3, "anomaly": 1e-5}[family]
    assert report["max_abs_diff"] <= limit


def test_parity_failure_names_machine_family_and_worst_row(
    exported, tiny_models, tiny_features, machine, tiny_params
):
    other = copy.deepcopy(tiny_models["classification"])
    train = tiny_features["train"]
    other["estimator"] = xgb.XGBClassifier(n_estimators=5, max_depth=2, random_state=1).fit(
        train[other["feature_names"]].to_numpy(dtype=np.float32),
        train[c.FAILURE_WITHIN_HORIZON].to_numpy(),
    )
    with pytest.raises(EdgeParityError) as err:
        check_onnx_parity(
            other, exported["classification"], tiny_features["test"], machine,
            tiny_params["edge_export"],
        )  # fmt: skip
    message = str(err.value)
    assert machine["machine_id"] in message
    assert "family classification" in message
    assert "worst test row" in message and "episode" in message


def test_booster_with_feature_names_still_converts(
    tiny_models, tiny_features, machine, tiny_params
):
    model = copy.deepcopy(tiny_models["regression"])
    frame = tiny_features["train"][model["feature_names"]].astype(np.float32)
    model["estimator"] = xgb.XGBRegressor(n_estimators=5, max_depth=2).fit(
        frame, tiny_features["train"][c.RUL]
    )
    assert model["estimator"].get_booster().feature_names is not None
    onnx_model = export_to_onnx(model, machine, tiny_params["edge_export"])
    report = check_onnx_parity(
        model, onnx_model, tiny_features["test"], machine, tiny_params["edge_export"]
    )
    assert report["mismatched_decisions"] == 0


def test_manifest_lists_constants_thresholds_and_hashes(tiny_bundle, tiny_baselines, tiny_models):
    _, manifest = tiny_bundle
    assert manifest["machine_id"] == tiny_baselines["machine_id"]
    assert [s["name"] for s in manifest["sensors"]] == list(tiny_baselines["sensors"])
    first = manifest["sensors"][0]
    assert first["median"] == tiny_baselines["sensors"][first["name"]]["median"]
    assert manifest["windows"]["rows"] == tiny_baselines["window_rows"]
    assert manifest["inputs"]["min_history_rows"] == 2 * max(tiny_baselines["window_rows"]) - 1
    assert manifest["regimes"]["codes"] == {r: i for i, r in enumerate(tiny_baselines["regimes"])}
    clf = manifest["models"]["classification"]
    assert clf["threshold"] == tiny_models["classification"]["threshold"]
    assert len(clf["sha256"]) == 64 and clf["version"] == clf["sha256"][:12]
    assert manifest["models"]["anomaly"]["feature_names"] == tiny_models["anomaly"]["feature_names"]
    assert all(m["parity"]["mismatched_decisions"] == 0 for m in manifest["models"].values())


def test_manifest_refuses_a_feature_table_the_edge_cannot_compute(
    tiny_features, tiny_baselines, machine, tiny_params, exported, tiny_models
):
    entry = describe_for_edge(tiny_models["regression"], exported["regression"], {}, {})
    table = tiny_features["test"].rename(columns={"speed": "speed_rpm"})
    with pytest.raises(ValueError, match="feature table columns differ"):
        build_edge_manifest(machine, tiny_baselines, table, tiny_params["validation"], entry)
    bad = entry | {"feature_names": ["episode_age_hours"]}
    with pytest.raises(ValueError, match="episode_age_hours"):
        build_edge_manifest(
            machine, tiny_baselines, tiny_features["test"], tiny_params["validation"], bad
        )


def test_manifest_marks_a_model_trained_with_other_sensor_baselines(
    tiny_features, tiny_baselines, machine, tiny_params, exported, tiny_models, monkeypatch
):
    """A champion kept by a run that fitted new baselines: the bundle computes its inputs with
    the run's constants, unlike its training. The manifest says so per family."""
    other = copy.deepcopy(tiny_baselines)
    other["sensors"]["current"]["median"] += 1.0
    same = tiny_models["classification"] | {"sensor_baselines": tiny_baselines}
    kept = tiny_models["regression"] | {"sensor_baselines": other}
    entries = [
        describe_for_edge(same, exported["classification"], {}, {"passed": True}),
        describe_for_edge(kept, exported["regression"], {}, {"passed": True}),
        describe_for_edge(tiny_models["anomaly"], exported["anomaly"], {}, {"passed": True}),
    ]
    warned = []
    monkeypatch.setattr(nodes.logger, "warning", lambda msg, *args: warned.append(msg % args))
    manifest = build_edge_manifest(
        machine, tiny_baselines, tiny_features["test"], tiny_params["validation"], *entries
    )
    models = manifest["models"]
    assert models["classification"]["feature_constants_match"] is True
    assert models["regression"]["feature_constants_match"] is False
    assert "feature_constants_match" not in models["anomaly"]  # registered before: unknown
    assert len(warned) == 1 and "regression" in warned[0] and "other sensor baselines" in warned[0]


def test_required_history_covers_the_health_slope():
    assert required_history_rows([6, 24, 96]) == 191


def test_warn_mode_exports_and_marks_the_failure(
    exported, tiny_models, tiny_features, machine, tiny_params
):
    other = copy.deepcopy(tiny_models["regression"])
    other["estimator"] = copy.deepcopy(tiny_models["classification"]["estimator"])
    other["estimator"].predict = lambda x: np.zeros(len(x))
    params = tiny_params["edge_export"]
    lenient = params | {"parity": params["parity"] | {"on_failure": {"regression": "warn"}}}
    report = check_onnx_parity(
        other, exported["regression"], tiny_features["test"], machine, lenient
    )
    assert report["passed"] is False
    assert "family regression" in report["failure"]
