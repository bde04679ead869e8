"""Reporting wiring: cards and the fleet table read whatever family metrics the machines make."""

import pytest
from kedro.io import DataCatalog, MemoryDataset
from kedro.pipeline import Node, Pipeline
from kedro.runner import SequentialRunner

from pdm_kedro.fleet import load_project_parameters, priority_machines
from pdm_kedro.pipeline_registry import build_registry, discover_templates
from tests.conftest import PROJECT_ROOT, TEST_MACHINE


@pytest.fixture(scope="module")
def params() -> dict:
    return load_project_parameters(env="base", conf_source=PROJECT_ROOT / "conf")


def fake_family(name: str) -> Pipeline:
    def evaluate(features_test: object) -> dict:  # noqa: ARG001
        return {}

    return Pipeline(
        [Node(evaluate, "features_test", "metrics", name="evaluate")],
        namespace=name,
        inputs={"features_test"},
    )


def test_cards_and_fleet_table_pick_up_whatever_families_exist(params):
    templates = {
        "reporting": discover_templates()["reporting"],
        "alpha": fake_family("alpha"),
        "beta": fake_family("beta"),
    }
    registry = build_registry(templates, params)
    card = next(n for n in registry[TEST_MACHINE].nodes if n.name.endswith("write_model_card"))
    assert card.inputs[3:] == [f"{TEST_MACHINE}.alpha.metrics", f"{TEST_MACHINE}.beta.metrics"]
    fleet = [n for n in registry["__default__"].nodes if n.namespace is None]
    assert [n.name for n in fleet] == ["build_fleet_metrics"]
    expected = sorted(
        f"{m}.{f}.metrics" for m in priority_machines(params) for f in ("alpha", "beta")
    )
    assert fleet[0].inputs == expected
    assert fleet[0].outputs == ["fleet_metrics"]
    assert any(n.name == "build_fleet_metrics" for n in registry["reporting"].nodes)
    assert not any(n.name == "build_fleet_metrics" for n in registry[TEST_MACHINE].nodes)


def test_no_family_no_fleet_table(params):
    registry = build_registry({"reporting": discover_templates()["reporting"]}, params)
    assert all(n.namespace for n in registry["__default__"].nodes)


def test_reporting_runs_on_the_real_registry_metrics(params, machine, tiny_baselines):
    registry = build_registry(discover_templates(), params)
    pipe = registry["reporting"].only_nodes_with_namespaces([TEST_MACHINE])
    metrics = [name for name in pipe.inputs() if name.endswith(".metrics")]
    assert {f"{TEST_MACHINE}.classification.metrics", f"{TEST_MACHINE}.regression.metrics"} <= set(
        metrics
    )
    doc = {"machine_id": TEST_MACHINE, "metrics": [], "n_rows": 1}
    catalog = DataCatalog(
        {
            f"params:{TEST_MACHINE}.machine": MemoryDataset(machine),
            "params:reporting": MemoryDataset({"retrain_command": "r", "mlflow_ui_command": "u"}),
            f"{TEST_MACHINE}.sensor_baselines": MemoryDataset(tiny_baselines),
            **{m: MemoryDataset({**doc, "family": m.split(".")[1]}) for m in metrics},
        }
    )
    out = SequentialRunner().run(pipe, catalog)
    card = out[f"{TEST_MACHINE}.model_card"].load()
    assert "| classification |" not in card  # no metric rows in the fake documents
    assert "### classification" in card and "### regression" in card
