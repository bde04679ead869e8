"""A classifier on snapshot features (readings, per-condition z-scores, one-hot levels) converts
to ONNX with parity on every test row: one-hot levels are plain float columns for onnxmltools.
(The edge bundle is still not built for snapshot tables: the edge runtime computes window
features from a history of readings; the source report says so.)"""

from __future__ import annotations

import numpy as np
import yaml

from pdm_kedro.pipelines.classification.nodes import (
    package_failure_model,
    refit_failure_classifier,
    train_failure_classifier,
)
from pdm_kedro.pipelines.edge_export.nodes import check_onnx_parity, export_to_onnx
from pdm_kedro.pipelines.feature_engineering.nodes import (
    build_window_features,
    fit_sensor_baselines,
)
from tests.conftest import PROJECT_ROOT
from tests.pipelines.feature_engineering.test_snapshot import FEATURES, _machine, _rows

PARAMS = {
    "seed": 42,
    "scale_pos_weight": 1,
    "early_stopping_rounds": 10,
    "refit_on_train_val": True,
    "xgboost": {"n_estimators": 60, "max_depth": 4, "learning_rate": 0.2, "n_jobs": 1,
                "eval_metric": "aucpr", "tree_method": "hist"},
}  # fmt: skip


def test_snapshot_classifier_exports_to_onnx_with_parity_on_every_test_row():
    machine = _machine(regime=True, scale_per_condition=True)
    train, val, test = _rows(400, 0, ["A", "B"]), _rows(150, 1, ["A", "B"]), _rows(150, 2, ["A"])
    for frame in (train, val, test):  # a label the readings carry
        frame["failure_within_horizon"] = (frame["temp"] > 61.5).astype(np.int8)
    baselines = fit_sensor_baselines(train, machine, FEATURES)
    features = {n: build_window_features(f, baselines, machine)
                for n, f in (("train", train), ("val", val), ("test", test))}  # fmt: skip
    classifier = train_failure_classifier(features["train"], features["val"], PARAMS)
    final = refit_failure_classifier(classifier, features["train"], features["val"], PARAMS)
    model = package_failure_model(final, 0.5, {"failure_horizon_hours": 48})
    assert any("__is_" in name for name in model["feature_names"])
    edge_export = yaml.safe_load(
        (PROJECT_ROOT / "conf" / "base" / "parameters_edge_export.yml").read_text()
    )["edge_export"]
    graph = export_to_onnx(model, machine, edge_export)
    report = check_onnx_parity(model, graph, features["test"], machine, edge_export)
    assert report["passed"] and report["rows"] == len(test)
    assert report["mismatched_decisions"] == 0
