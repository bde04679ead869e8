"""Per-machine model settings: ``model_overrides`` in a machine's file reach that machine's nodes
(merged over the fleet-wide family parameters) and no other machine's."""

from __future__ import annotations

import copy

import pytest
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project

from pdm_kedro.fleet import family_parameters, load_project_parameters, merge_overrides
from pdm_kedro.pipeline_registry import build_registry, discover_templates
from tests.conftest import PROJECT_ROOT, TEST_MACHINE
from tests.docs.kedro_cli import isolated_env

SNAPSHOT_ENV, SNAPSHOT_MACHINE = "snapshot", "snapshot_pump"


def test_overrides_merge_key_by_key_without_changing_the_fleets():
    fleet = {"seed": 42, "xgboost": {"max_depth": 3, "n_jobs": 1}, "events": {"k": 3}}
    kept = copy.deepcopy(fleet)
    merged = merge_overrides(fleet, {"xgboost": {"max_depth": 6}, "seed": 7})
    assert merged == {"seed": 7, "xgboost": {"max_depth": 6, "n_jobs": 1}, "events": {"k": 3}}
    assert fleet == kept
    machine = {"model_overrides": {"classification": {"seed": 1}}}
    params = {"classification": fleet, "regression": {"seed": 5}}
    assert family_parameters(params, machine, "regression") == {"seed": 5}
    assert family_parameters(params, machine, "classification")["seed"] == 1


@pytest.fixture(scope="module")
def snapshot_params() -> dict:
    return load_project_parameters(env=SNAPSHOT_ENV, conf_source=PROJECT_ROOT / "conf")


def test_an_overriding_machine_reads_its_own_family_parameters(snapshot_params):
    params = copy.deepcopy(snapshot_params)
    base = load_project_parameters(env="base", conf_source=PROJECT_ROOT / "conf")
    params[TEST_MACHINE] = base[TEST_MACHINE]  # a machine without overrides
    other_id = next(m for m in base["fleet"]["priority_machines"] if m != TEST_MACHINE)
    params[other_id] = copy.deepcopy(base[other_id])  # overrides a nested regression key
    params[other_id]["machine"]["model_overrides"] = {"regression": {"rul_cap_hours": 99}}
    registry = build_registry(discover_templates(), params)
    ours = registry[SNAPSHOT_MACHINE].inputs()
    assert f"params:{SNAPSHOT_MACHINE}.classification" in ours
    assert "params:classification" not in ours
    other = registry[TEST_MACHINE].inputs()
    assert "params:classification" in other
    assert not any(name.startswith(f"params:{TEST_MACHINE}.classification") for name in other)
    # stages outside the training run read the machine's values too, nested keys included
    monitoring = registry["monitoring"].inputs()
    assert f"params:{other_id}.regression.rul_cap_hours" in monitoring
    assert "params:regression.rul_cap_hours" in monitoring  # the machines without overrides
    # a snapshot table gets no stage that needs a time order
    namespaces = {n.namespace for n in registry[SNAPSHOT_MACHINE].nodes}
    assert not any(ns.split(".")[1:2] in (["diagnosis"], ["edge_export"]) for ns in namespaces)
    assert not any(n.name.endswith(("fit_diagnosis_reference", "build_edge_manifest"))
                   for n in registry[SNAPSHOT_MACHINE].nodes)  # fmt: skip


def test_the_session_holds_the_merged_parameters(tmp_path, monkeypatch):
    for key, value in isolated_env(tmp_path).items():
        monkeypatch.setenv(key, value)
    bootstrap_project(PROJECT_ROOT)
    with KedroSession.create(project_path=PROJECT_ROOT, env=SNAPSHOT_ENV) as session:
        catalog = session.load_context().catalog
        merged = catalog.load(f"params:{SNAPSHOT_MACHINE}.classification")
        fleet = catalog.load("params:classification")
        depth = catalog.load(f"params:{SNAPSHOT_MACHINE}.classification.xgboost.max_depth")
    assert depth == 6
    assert merged["xgboost"]["max_depth"] == 6 and fleet["xgboost"]["max_depth"] == 3
    assert merged["refit_on_train_val"] is True and fleet["refit_on_train_val"] is False
    # everything the machine does not override is the fleet's
    assert merged["events"] == fleet["events"]
    assert merged["xgboost"]["n_estimators"] == fleet["xgboost"]["n_estimators"]
