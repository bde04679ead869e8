"""Configuration is validated once per session, before any node runs, with file, key and values."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from pdm_kedro.config_check import CHECK_MACHINES_ENV, ConfigError, check_parameters
from pdm_kedro.fleet import load_project_parameters
from tests.conftest import PROJECT_ROOT, TEST_MACHINE
from tests.docs.kedro_cli import isolated_env, kedro_executable


@pytest.fixture(scope="module")
def params() -> dict:
    return load_project_parameters(env="base", conf_source=PROJECT_ROOT / "conf")


def test_the_project_configuration_is_valid(params):
    check_parameters(params, PROJECT_ROOT / "conf", "base")


def test_a_bad_value_names_file_key_and_allowed_values(params):
    bad = {**params, TEST_MACHINE: {"machine": {**params[TEST_MACHINE]["machine"]}}}
    bad[TEST_MACHINE]["machine"]["on_invalid"] = "maybe"
    with pytest.raises(ConfigError) as err:
        check_parameters(bad, PROJECT_ROOT / "conf", "base")
    message = str(err.value)
    assert f"parameters/machines/{TEST_MACHINE}.yml" in message
    assert f"{TEST_MACHINE}.machine.on_invalid" in message and "'fail' or 'quarantine'" in message


def test_unknown_priority_machine_and_family_are_reported(params):
    bad = {**params, "fleet": {"priority_machines": ["nope"]}}
    bad["promotion"] = {"margin": {"toy": 1.0}}
    with pytest.raises(ConfigError, match="(?s)Unknown machine id 'nope'.*unknown families"):
        check_parameters(bad)


def test_a_fleet_task_checks_only_its_own_machine(params, monkeypatch):
    """``pdm-kedro fleet run`` sets the variable per task: another machine's bad file is not this
    task's error, its own still is."""
    bad = {**params, TEST_MACHINE: {"machine": {**params[TEST_MACHINE]["machine"]}}}
    bad[TEST_MACHINE]["machine"]["on_invalid"] = "maybe"
    other = next(m for m in params["fleet"]["priority_machines"] if m != TEST_MACHINE)
    monkeypatch.setenv(CHECK_MACHINES_ENV, other)
    check_parameters(bad, PROJECT_ROOT / "conf", "base")
    monkeypatch.setenv(CHECK_MACHINES_ENV, f"{other},{TEST_MACHINE}")
    with pytest.raises(ConfigError, match=f"{TEST_MACHINE}.machine.on_invalid"):
        check_parameters(bad, PROJECT_ROOT / "conf", "base")


@pytest.mark.slow
def test_kedro_run_stops_before_any_node_on_a_bad_machine_file(tmp_path):
    project = tmp_path / "project"
    project.mkdir()
    shutil.copy(PROJECT_ROOT / "pyproject.toml", project / "pyproject.toml")
    (project / "src").mkdir()
    shutil.copytree(PROJECT_ROOT / "conf", project / "conf", ignore=shutil.ignore_patterns("local"))
    (project / "conf" / "local").mkdir()
    bad = project / "conf" / "bad" / "parameters" / "machines" / f"{TEST_MACHINE}.yml"
    bad.parent.mkdir(parents=True)
    bad.write_text(f"{TEST_MACHINE}:\n  machine:\n    sampling_interval_min: -5\n")
    result = subprocess.run(
        [kedro_executable(), "run", "-e", "bad", "--namespaces", TEST_MACHINE],
        cwd=project,
        env=isolated_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert f"{bad}: {TEST_MACHINE}.machine.sampling_interval_min" in output.replace("\n", "")
    assert "greater than 0" in " ".join(output.split())  # rich wraps long lines
    assert not (tmp_path / "data" / "01_raw").exists()  # no node ran (only the run log is there)


def test_a_misspelt_model_override_key_is_refused_naming_file_and_key(params):
    machine = {**params[TEST_MACHINE]["machine"]}
    machine["model_overrides"] = {"classification": {"xgboost": {"max_dept": 4}}}
    bad = {**params, TEST_MACHINE: {"machine": machine}}
    with pytest.raises(ConfigError) as err:
        check_parameters(bad, PROJECT_ROOT / "conf", "base")
    message = str(err.value)
    assert f"parameters/machines/{TEST_MACHINE}.yml" in message
    key = f"{TEST_MACHINE}.machine.model_overrides.classification.xgboost.max_dept"
    assert key in message and "did you mean 'max_depth'" in message


def test_model_overrides_name_defined_families_and_known_keys_pass(params):
    machine = {**params[TEST_MACHINE]["machine"]}
    machine["model_overrides"] = {"regresion": {"seed": 1}}
    with pytest.raises(ConfigError, match="model_overrides names unknown families"):
        check_parameters({**params, TEST_MACHINE: {"machine": machine}})
    machine["model_overrides"] = {"classification": {"xgboost": {"max_depth": 4}, "seed": 7}}
    check_parameters({**params, TEST_MACHINE: {"machine": machine}}, PROJECT_ROOT / "conf", "base")
