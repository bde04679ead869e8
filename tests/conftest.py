"""Shared fixtures: the project's own config, and tiny simulated data built from it.

Nothing here writes into the project's ``data/`` or ``mlflow.db``: every test that runs Kedro
points ``PDM_DATA_ROOT`` and ``PDM_MLFLOW_TRACKING_URI`` at a temporary folder.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path

import pytest
import yaml

PROJECT_ROOT = Path(__file__).resolve().parents[1]
CONF_BASE = PROJECT_ROOT / "conf" / "base"
TEST_MACHINE = "motor_siemens_1la7_001"

os.environ.setdefault("KEDRO_DISABLE_TELEMETRY", "1")


def load_machine(machine_id: str) -> dict:
    """A machine's ``machine:`` block from conf/base."""
    path = CONF_BASE / "parameters" / "machines" / f"{machine_id}.yml"
    return yaml.safe_load(path.read_text())[machine_id]["machine"]


@pytest.fixture(scope="session")
def project_params() -> dict:
    """Fleet-wide parameters as configured in conf/base/parameters*.yml (without machines)."""
    params: dict = {}
    for path in sorted(CONF_BASE.glob("parameters*.yml")):
        params.update(yaml.safe_load(path.read_text()) or {})
    return params


@pytest.fixture(scope="session")
def tiny_params(project_params: dict) -> dict:
    """The project's parameters scaled down: 3,000 rows, short lives (about 10 episodes), 12 h horizon."""
    params = copy.deepcopy(project_params)
    params["simulation"]["rows_per_machine"] = 3000
    params["simulation"]["life_hours"] = {"shape": 3.0, "scale": 150.0, "min": 90.0, "max": 260.0}
    params["simulation"]["regime_mean_duration_hours"] = 4.0
    params["labels"]["failure_horizon_hours"] = 12
    return params


@pytest.fixture(scope="session")
def machine() -> dict:
    """The test machine's config block."""
    return load_machine(TEST_MACHINE)


@pytest.fixture(scope="session")
def tiny_history(machine: dict, tiny_params: dict):
    from pdm_kedro.pipelines.data_generation.nodes import simulate_machine_history

    return simulate_machine_history(machine, tiny_params["simulation"], tiny_params["labels"])


@pytest.fixture(scope="session")
def tiny_hidden_state(machine: dict, tiny_params: dict) -> dict:
    """{"train": ..., "val": ..., "test": ...} simulator hidden state of the tiny history."""
    from pdm_kedro.pipelines.data_generation.nodes import (
        simulate_machine_history_and_hidden_state,
        split_by_episode,
    )

    _, hidden = simulate_machine_history_and_hidden_state(
        machine, tiny_params["simulation"], tiny_params["labels"]
    )
    parts = split_by_episode(hidden, tiny_params["splits"])
    return dict(zip(("train", "val", "test"), parts, strict=True))


@pytest.fixture(scope="session")
def tiny_splits(tiny_history, tiny_params: dict):
    """(train, val, test) raw splits of the tiny history."""
    from pdm_kedro.pipelines.data_generation.nodes import split_by_episode

    return split_by_episode(tiny_history, tiny_params["splits"])


@pytest.fixture(scope="session")
def tiny_baselines(tiny_splits, machine: dict, tiny_params: dict) -> dict:
    from pdm_kedro.pipelines.feature_engineering.nodes import fit_sensor_baselines

    return fit_sensor_baselines(tiny_splits[0], machine, tiny_params["features"])


@pytest.fixture(scope="session")
def tiny_features(tiny_splits, tiny_baselines: dict, machine: dict):
    """{"train": ..., "val": ..., "test": ...} feature tables of the tiny splits."""
    from pdm_kedro.pipelines.feature_engineering.nodes import build_window_features

    names = ("train", "val", "test")
    return {
        name: build_window_features(split, tiny_baselines, machine)
        for name, split in zip(names, tiny_splits, strict=True)
    }


@pytest.fixture()
def isolated_project_env(tmp_path, monkeypatch) -> Path:
    """Send every catalog write and the MLflow store of this test to ``tmp_path``."""
    monkeypatch.setenv("PDM_DATA_ROOT", str(tmp_path / "data"))
    monkeypatch.setenv("PDM_MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.setenv("KEDRO_DISABLE_TELEMETRY", "1")
    return tmp_path
