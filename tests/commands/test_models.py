"""``pdm-kedro models``: clear errors, list, and a rollback that restores the previous champion."""

from __future__ import annotations

import json

import mlflow
import pytest
from click.testing import CliRunner
from mlflow.tracking import MlflowClient

from pdm_kedro.commands import cli
from pdm_kedro.datasets.mlflow_model_registry import MlflowModelRegistryDataset
from pdm_kedro.promotion import CHAMPION, PREVIOUS_CHAMPION
from tests.conftest import TEST_MACHINE

NAME = f"{TEST_MACHINE}-regression"


class Constant:
    def predict(self, x):
        return x[:, 0]


@pytest.fixture()
def registry(isolated_project_env, monkeypatch):
    """A registry with v1 (previous champion) and v2 (champion) of one family."""
    monkeypatch.chdir(isolated_project_env)  # nothing may land in the project tree
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(f"sqlite:///{isolated_project_env / 'mlflow.db'}")
    mlflow.set_experiment("models_command")
    dataset = MlflowModelRegistryDataset(registered_model_name=NAME)
    with mlflow.start_run():
        for score in (10.0, 8.0):
            dataset.save(
                {
                    "model": {"family": "regression", "estimator": Constant()},
                    "family": "regression",
                    "machine_id": TEST_MACHINE,
                    "score_name": "rmse",
                    "score": score,
                    "trained_until": "2025-01-10T00:00:00",
                }
            )
    client = MlflowClient()
    client.set_registered_model_alias(NAME, PREVIOUS_CHAMPION, "1")
    client.set_registered_model_alias(NAME, CHAMPION, "2")
    yield client
    mlflow.set_tracking_uri(previous)


def run(*args: str):
    return CliRunner().invoke(cli, ["models", *args], standalone_mode=True)


def test_unknown_machine_family_and_version_are_clear_errors(registry):
    result = run("list", "no_such_machine")
    assert result.exit_code != 0 and "Unknown machine id 'no_such_machine'" in result.output
    result = run("list", TEST_MACHINE, "toy")
    assert result.exit_code != 0 and "Unknown model family 'toy'" in result.output
    result = run("promote", TEST_MACHINE, "regression", "--version", "9", "--no-bundle")
    assert result.exit_code != 0 and f"{NAME} has no version '9'" in result.output
    result = run("rollback", TEST_MACHINE, "anomaly", "--no-bundle")
    assert result.exit_code != 0 and "no previous_champion" in result.output
    assert "Traceback" not in result.output


def test_list_shows_versions_and_aliases(registry):
    result = run("list", TEST_MACHINE, "regression")
    assert result.exit_code == 0, result.output
    assert "v1" in result.output and "[previous_champion]" in result.output
    assert "[champion, challenger]" in result.output


def test_rollback_restores_the_previous_champion_and_leaves_an_audit_line(
    registry, isolated_project_env
):
    result = run("rollback", TEST_MACHINE, "regression", "--no-bundle")
    assert result.exit_code == 0, result.output
    assert str(registry.get_model_version_by_alias(NAME, CHAMPION).version) == "1"
    assert str(registry.get_model_version_by_alias(NAME, PREVIOUS_CHAMPION).version) == "2"
    assert registry.get_model_version(NAME, "1").tags["promotion_decision"] == "rollback_to"
    audit = isolated_project_env / "data" / "08_reporting" / "promotions.jsonl"
    line = json.loads(audit.read_text().splitlines()[-1])
    assert line["decision"] == "rollback" and line["family"] == "regression"
    assert line["champion_version"] == "2" and line["challenger_version"] == "1"
