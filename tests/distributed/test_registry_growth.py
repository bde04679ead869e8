"""The registry on a generated 500-machine fleet: lazy, linear, same pipelines as before."""

from __future__ import annotations

from pathlib import Path

import click
import pytest
import yaml
from kedro.config import OmegaConfigLoader
from kedro.pipeline import Pipeline

from pdm_kedro import settings
from pdm_kedro.distributed.config_loader import (
    FleetConfigLoader,
    _scan,
    machine_scope,
    requested_machines,
)
from pdm_kedro.distributed.generated_fleet import make_conf_source, write_generated_fleet
from pdm_kedro.distributed.lazy_registry import LazyRegistry, concatenate
from pdm_kedro.fleet import load_project_parameters, machines_in_parameters, priority_machines
from pdm_kedro.pipeline_registry import build_registry, discover_templates
from tests.conftest import PROJECT_ROOT, TEST_MACHINE

N_MACHINES = 500


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> tuple[Path, str]:
    conf = make_conf_source(tmp_path_factory.mktemp("fleet500") / "conf", PROJECT_ROOT / "conf")
    return conf, write_generated_fleet(conf, N_MACHINES)


@pytest.fixture(scope="module")
def params(generated) -> dict:
    conf, env = generated
    return load_project_parameters(env=env, conf_source=conf)


@pytest.fixture(scope="module")
def templates() -> dict[str, Pipeline]:
    return discover_templates()


def test_generated_config_defines_every_machine(params):
    machines = machines_in_parameters(params)
    assert len(machines) == N_MACHINES
    copies = [m for m in machines if m.startswith(f"{TEST_MACHINE}_g")]
    assert len(copies) == (N_MACHINES - 20) // 20
    assert all(machines[m]["machine_id"] == m for m in copies)
    assert all(machines[m]["sensors"] == machines[TEST_MACHINE]["sensors"] for m in copies)


def test_registry_names_every_machine_but_builds_only_what_is_read(params, templates):
    registry = build_registry(templates, params)
    assert isinstance(registry, LazyRegistry)
    assert len(registry) == N_MACHINES + len(templates) + 2  # + fleet, __default__
    assert registry.built == []
    default = registry["__default__"]
    priority = set(priority_machines(params))
    assert {n.namespace.split(".")[0] for n in default.nodes if n.namespace} == priority
    assert set(registry.built) == {"__default__", *priority}  # no other machine was built
    assert "build_fleet_metrics" in {n.name for n in default.nodes}
    other = next(m for m in registry if m.startswith("pump_grundfos_cr3_004_g"))
    assert {n.namespace.split(".")[0] for n in registry[other].nodes} == {other}


def test_concatenate_equals_summing(templates, params):
    registry = build_registry(templates, params)
    parts = [registry[m] for m in priority_machines(params)[:3]]
    summed = sum(parts, Pipeline([]))
    joined = concatenate(parts)
    assert set(joined.nodes) == set(summed.nodes)
    assert joined.inputs() == summed.inputs() and joined.outputs() == summed.outputs()


@pytest.mark.parametrize("env", ["base", "small", "cmapss"])
def test_fast_config_loader_reads_the_same_parameters(env):
    args = settings.CONFIG_LOADER_ARGS
    source = str(PROJECT_ROOT / "conf")
    runtime = {TEST_MACHINE: {"machine": {"age_years": 3}}, "simulation": {"seed": 7}}
    for runtime_params in (None, runtime):
        omega = OmegaConfigLoader(
            conf_source=source, env=env, runtime_params=runtime_params, **args
        )
        fast = FleetConfigLoader(conf_source=source, env=env, runtime_params=runtime_params, **args)
        assert fast["parameters"] == omega["parameters"]


@pytest.mark.slow  # OmegaConf reads 500 machine files in about 25 s
def test_fast_config_loader_on_the_generated_fleet(generated, params):
    conf, env = generated
    omega = OmegaConfigLoader(conf_source=str(conf), env=env, **settings.CONFIG_LOADER_ARGS)
    assert omega["parameters"] == params


def _read(conf: Path, env: str) -> dict:
    return FleetConfigLoader(conf_source=str(conf), env=env, **settings.CONFIG_LOADER_ARGS)[
        "parameters"
    ]


def test_a_run_of_one_machine_reads_only_its_file_and_the_priority_ones(generated, params):
    conf, env = generated
    every = machines_in_parameters(params)
    other = next(m for m in every if m.startswith("pump_grundfos_cr3_004_g"))
    with machine_scope([other]):
        scoped = _read(conf, env)
    machines = machines_in_parameters(scoped)
    assert set(machines) == {other, *priority_machines(params)}
    assert all(scoped[m] == params[m] for m in machines)  # the same blocks, merged the same
    rest = {k: v for k, v in params.items() if k not in every}
    assert {k: v for k, v in scoped.items() if k not in machines} == rest
    assert len(machines_in_parameters(_read(conf, env))) == N_MACHINES  # outside: every one


def test_a_key_defined_twice_is_an_error_even_in_files_not_parsed(tmp_path):
    conf = make_conf_source(tmp_path / "conf", PROJECT_ROOT / "conf")
    env = write_generated_fleet(conf, 30)
    folder = conf / env / "parameters" / "machines"
    first = sorted(folder.glob("*.yml"))[0]
    (folder / "zz_copy.yml").write_text(first.read_text())  # the same machine again
    with machine_scope([TEST_MACHINE]), pytest.raises(ValueError, match="Duplicate keys"):
        _read(conf, env)


def test_requested_machines_follow_the_kedro_run_options(generated):
    run = click.Command(
        "run", params=[click.Option(["--namespaces"]), click.Option(["--pipelines"])]
    )
    assert requested_machines() is None  # no command: every machine
    with click.Context(run) as ctx:
        ctx.params = {"namespaces": ["m1.classification", "m2"], "pipelines": ["__default__"]}
        assert requested_machines() == (frozenset({"m1", "m2"}), True)
        ctx.params = {"namespaces": [], "pipelines": ["fleet"]}
        assert requested_machines() == (frozenset({"fleet"}), False)
        conf, env = generated
        every = _read(conf, env)  # `fleet` is no machine id: every machine is read
        assert len(machines_in_parameters(every)) == N_MACHINES
        ctx.params = {"namespaces": [], "pipelines": []}
        assert requested_machines() is None


def test_generated_machine_files_scan_to_their_keys(generated):
    conf, env = generated
    path = sorted((conf / env / "parameters" / "machines").glob("*.yml"))[0]
    plain, keys = _scan(path)
    assert plain and keys == frozenset(yaml.safe_load(path.read_text()))
