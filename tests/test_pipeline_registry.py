"""The registry: one namespaced instance per machine, stages selectable, priority by default."""

import pytest

from pdm_kedro.fleet import load_project_parameters, priority_machines
from pdm_kedro.pipeline_registry import build_registry, discover_templates, namespace_for_machine
from tests.conftest import PROJECT_ROOT, TEST_MACHINE

FOUNDATION_STAGES = ("data_generation", "data_validation", "feature_engineering")


@pytest.fixture(scope="module")
def params() -> dict:
    return load_project_parameters(env="base", conf_source=PROJECT_ROOT / "conf")


@pytest.fixture(scope="module")
def registry(params) -> dict:
    return build_registry(discover_templates(), params)


def test_default_pipeline_runs_exactly_the_priority_machines(registry, params):
    nodes = registry["__default__"].nodes
    namespaces = {node.namespace.split(".")[0] for node in nodes if node.namespace}
    assert namespaces == set(priority_machines(params))


def test_every_stage_is_its_own_pipeline(registry):
    for stage in FOUNDATION_STAGES:
        nodes = registry[stage].nodes
        assert nodes, stage
        assert all(node.namespace for node in nodes)


def test_each_machine_has_its_own_pipeline_and_namespace(registry):
    pipe = registry["cnc_haas_vf2_001"]  # not a priority machine
    assert {n.namespace.split(".")[0] for n in pipe.nodes} == {"cnc_haas_vf2_001"}
    fleet = registry["fleet"].nodes
    assert "cnc_haas_vf2_001" in {n.namespace.split(".")[0] for n in fleet if n.namespace}


def test_namespacing_prefixes_datasets_and_machine_params_only(registry):
    pipe = registry[TEST_MACHINE]
    inputs = pipe.inputs()
    assert f"params:{TEST_MACHINE}.machine" in inputs
    assert "params:simulation" in inputs  # fleet-wide parameters keep their name
    assert "params:features" in inputs
    assert f"{TEST_MACHINE}.features_train" in pipe.all_outputs()
    assert not any(name.startswith("params:machine") for name in inputs)


def test_namespace_for_machine_keeps_the_template_unchanged():
    template = discover_templates()["feature_engineering"]
    instance = namespace_for_machine(template, "m1")
    assert "validated_train" in template.inputs()
    assert "m1.validated_train" in instance.inputs()
    assert len(instance.nodes) == len(template.nodes)
