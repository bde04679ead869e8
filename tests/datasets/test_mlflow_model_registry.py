"""The registry dataset: log, register, and move `champion` only on a win on the same test data."""

import mlflow
import pytest
from mlflow.tracking import MlflowClient

from pdm_kedro.datasets.mlflow_model_registry import (
    CHAMPION,
    MlflowModelRegistryDataset,
    is_better,
)


class Constant:
    """A picklable stand-in estimator."""

    def predict(self, x):
        return x[:, 0]


def entry(score: float, fingerprint: str = "abc") -> dict:
    return {
        "model": {"family": "regression", "estimator": Constant(), "feature_names": ["a"]},
        "family": "regression",
        "machine_id": "m1",
        "score_name": "rmse",
        "score": score,
        "greater_is_better": False,
        "test_fingerprint": fingerprint,
    }


@pytest.fixture()
def tracking(tmp_path):
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    # artifacts beside the store: MLflow's default is ./mlruns in the working directory
    mlflow.create_experiment("registry_test", artifact_location=(tmp_path / "artifacts").as_uri())
    mlflow.set_experiment("registry_test")
    yield MlflowClient()
    mlflow.set_tracking_uri(previous)


def champion_version(client: MlflowClient, name: str) -> str:
    return str(client.get_model_version_by_alias(name, CHAMPION).version)


def test_champion_moves_only_when_beaten_on_the_same_test_data(tracking):
    dataset = MlflowModelRegistryDataset(registered_model_name="m1-regression")
    with mlflow.start_run():
        dataset.save(entry(10.0))  # v1: first version becomes champion
        assert champion_version(tracking, "m1-regression") == "1"
        dataset.save(entry(12.0))  # v2: worse rmse
        assert champion_version(tracking, "m1-regression") == "1"
        dataset.save(entry(8.0, fingerprint="other"))  # v3: better, but other test data
        assert champion_version(tracking, "m1-regression") == "1"
        dataset.save(entry(8.0))  # v4: better on the same data
        assert champion_version(tracking, "m1-regression") == "4"
    assert mlflow.active_run() is None  # the dataset leaves no run of its own open
    v3 = tracking.get_model_version("m1-regression", "3")
    assert v3.tags["champion_decision"] == "not comparable"
    assert v3.tags["test_fingerprint"] == "other" and v3.tags["score_name"] == "rmse"
    loaded = dataset.load()
    assert loaded["family"] == "regression"


def test_without_an_active_run_nothing_is_registered(tracking):
    MlflowModelRegistryDataset(registered_model_name="m1-none").save(entry(1.0))
    assert tracking.search_registered_models(filter_string="name = 'm1-none'") == []


def test_is_better():
    assert is_better(0.9, 0.8, True) and not is_better(0.8, 0.8, True)
    assert is_better(5.0, 6.0, False) and is_better(1.0, None, True)
    assert not is_better(None, 1.0, True)
