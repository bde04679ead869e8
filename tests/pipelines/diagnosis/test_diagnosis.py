"""Diagnosis stage on the tiny fixtures: each configured mode's episodes are diagnosed as that
mode, the evaluation scores beside the most-common-mode baseline, the local-accuracy check and
the fleet report keep the issue's keys, and the template runs for one namespace."""

from __future__ import annotations

import copy

import numpy as np
import pytest
from kedro.io import DataCatalog, MemoryDataset
from kedro.runner import SequentialRunner

from pdm_kedro import contract as c
from pdm_kedro.pipeline_registry import namespace_for_machine
from pdm_kedro.pipelines.data_generation.nodes import (
    simulate_machine_history_and_hidden_state,
)
from pdm_kedro.pipelines.diagnosis import nodes as n
from pdm_kedro.pipelines.diagnosis.pipeline import create_pipeline
from pdm_kedro.pipelines.feature_engineering.nodes import build_window_features

DIAGNOSIS = {
    "window_hours": 100,
    "failure_wear": 0.999,
    "healthy_rul_hours": 200,
    "temperature": 0.05,
    "top_modes": 2,
    "local_accuracy_rows": None,
    "card_top_factors": 3,
    "card_alarms": 5,
}


@pytest.fixture(scope="module")
def reference(tiny_features, machine, tiny_baselines):
    return n.fit_diagnosis_reference(tiny_features["train"], machine, tiny_baselines, DIAGNOSIS)


def test_each_modes_episodes_are_diagnosed_as_that_mode(
    machine, tiny_params, tiny_baselines, reference
):
    for mode in machine["failure_modes"]:
        only = copy.deepcopy(machine)
        only["failure_modes"] = {mode: machine["failure_modes"][mode]}
        history, hidden = simulate_machine_history_and_hidden_state(
            only, tiny_params["simulation"], tiny_params["labels"]
        )
        features = build_window_features(history, tiny_baselines, machine)
        near = features[features[c.RUL] <= 24]
        modes, confidence = n.diagnose_rows(near, machine, tiny_baselines, reference, DIAGNOSIS)
        predicted = np.array(modes)[confidence.argmax(axis=1)]
        assert (predicted == mode).mean() >= 0.8, (mode, (predicted == mode).mean())
        assert np.allclose(confidence.sum(axis=1), 1.0)


def test_evaluation_scores_beside_the_most_common_mode(
    tiny_features, tiny_hidden_state, machine, tiny_baselines, reference
):
    doc = n.evaluate_diagnosis(
        tiny_features["test"],
        tiny_hidden_state["train"],
        tiny_hidden_state["test"],
        machine,
        tiny_baselines,
        reference,
        DIAGNOSIS,
    )
    assert doc["rows"] > 0 and 0.0 <= doc["accuracy"] <= 1.0
    assert 0.0 <= doc["baseline_accuracy"] <= 1.0 and "most common mode" in doc["baseline"]
    example = doc["examples"][0]["diagnosis"][0]
    assert example["action"] and example["part"] and example["repair_time_h"] > 0
    assert example["mode"] in machine["failure_modes"]


def test_fleet_report_keeps_the_issue_keys(tiny_features, tiny_models):
    checks = [
        n.check_local_accuracy(
            tiny_features["test"],
            tiny_models[f],
            n.compute_test_contributions(tiny_features["test"], tiny_models[f]),
            DIAGNOSIS,
        )
        for f in ("classification", "regression")
    ]
    assert all(ch["max_local_accuracy_error"] <= 1e-4 for ch in checks)
    assert checks[0]["rows"] == len(tiny_features["test"])
    evaluation = {
        "machine_id": "m",
        "modes": ["a", "b"],
        "rows": 10,
        "episodes": 1,
        "accuracy": 0.9,
        "baseline_accuracy": 0.5,
    }
    report = n.build_diagnosis_report(evaluation, *checks)
    assert {"fleet_accuracy", "fleet_baseline_accuracy", "max_local_accuracy_error"} <= set(report)
    assert report["machines"]["m"]["accuracy"] == 0.9
    assert report["machines"]["m"]["baseline_accuracy"] == 0.5
    assert report["beats_baseline_on_every_multi_mode_machine"] is True


def test_template_runs_for_one_namespace(
    tiny_features, tiny_hidden_state, tiny_models, tiny_baselines, machine
):
    mid = machine["machine_id"]
    pipe = namespace_for_machine(create_pipeline(), mid)
    inputs = {
        f"{mid}.features_train": tiny_features["train"],
        f"{mid}.features_test": tiny_features["test"],
        f"{mid}.hidden_state_train": tiny_hidden_state["train"],
        f"{mid}.hidden_state_test": tiny_hidden_state["test"],
        f"{mid}.sensor_baselines": tiny_baselines,
        f"{mid}.classification.model": tiny_models["classification"],
        f"{mid}.regression.model": tiny_models["regression"],
        f"params:{mid}.machine": machine,
        "params:diagnosis": DIAGNOSIS,
    }
    assert pipe.inputs() == set(inputs)
    catalog = DataCatalog({k: MemoryDataset(v) for k, v in inputs.items()})
    for name in pipe.outputs():
        catalog[name] = MemoryDataset()
    SequentialRunner().run(pipe, catalog)
    assert catalog.load(f"{mid}.diagnosis.evaluation")["machine_id"] == mid
    assert catalog.load(f"{mid}.classification.local_accuracy")["max_local_accuracy_error"] <= 1e-4
    card = catalog.load(f"{mid}.classification.explanation_card")
    assert "Global importance per sensor" in card and "test alarms" in card
    sensors = [s["name"] for s in machine["sensors"]]
    assert any(f"| {s} |" in card for s in sensors)
