"""The registry datasets: every save is a `challenger`; only a promotion decision moves `champion`."""

import json

import mlflow
import pytest
from kedro.io import DatasetError
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from pdm_kedro.datasets.mlflow_model_registry import (
    MlflowAliasDataset,
    MlflowModelRegistryDataset,
    MlflowPromotionDataset,
    apply_held_alias_moves,
    drop_held_alias_moves,
    hold_alias_moves,
    is_better,
)
from pdm_kedro.promotion import CHALLENGER, CHAMPION, PREVIOUS_CHAMPION, decide_promotion

PROMOTION = {"margin": {"regression": 1.0}, "guard_tolerance": 0.0}


class Constant:
    """A picklable stand-in estimator."""

    def predict(self, x):
        return x[:, 0]


def entry(score: float) -> dict:
    return {
        "model": {"family": "regression", "estimator": Constant(), "feature_names": ["a"]},
        "metrics": {"family": "regression", "machine_id": "m1", "metrics": []},
        "family": "regression",
        "machine_id": "m1",
        "score_name": "rmse",
        "score": score,
        "test_fingerprint": "abc",
        "trained_until": "2025-01-10T00:00:00",
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


def alias(client: MlflowClient, name: str, which: str) -> str:
    return str(client.get_model_version_by_alias(name, which).version)


def train_and_promote(name, audit, rmse_new, rmse_old):
    """One training run: register a challenger, decide on scores, apply."""
    registered = MlflowModelRegistryDataset(registered_model_name=name)
    registered.save(entry(rmse_new))
    challenger = registered.load()
    champion = MlflowAliasDataset(registered_model_name=name).load()
    scores = {
        "challenger": {"rmse": rmse_new, "nasa_score_mean": 1.0},
        "champion": None if champion is None else {"rmse": rmse_old, "nasa_score_mean": 1.0},
        "evaluation": {"from": "2025-02-01T00:00:00"},
    }
    production = MlflowPromotionDataset(registered_model_name=name, audit_path=str(audit))
    production.save(decide_promotion(challenger, champion, scores, PROMOTION, family="regression"))
    return production.load()


def test_challenger_then_champion_only_on_a_win_by_the_margin(tracking, tmp_path):
    name, audit = "m1-regression", tmp_path / "promotions.jsonl"
    with mlflow.start_run():
        first = train_and_promote(name, audit, 10.0, None)  # v1: no champion yet
        assert first["registry_version"] == "1" and alias(tracking, name, CHAMPION) == "1"
        kept = train_and_promote(name, audit, 9.5, 10.0)  # v2: better by less than the margin
        assert alias(tracking, name, CHALLENGER) == "2" and alias(tracking, name, CHAMPION) == "1"
        assert kept["registry_version"] == "1"  # the bundle is built from the champion
        won = train_and_promote(name, audit, 8.0, 10.0)  # v3: better by 2 h > 1 h
        assert won["registry_version"] == "3" and alias(tracking, name, CHAMPION) == "3"
        assert alias(tracking, name, PREVIOUS_CHAMPION) == "1"
    assert mlflow.active_run() is None
    v2 = tracking.get_model_version(name, "2")
    assert v2.tags["promotion_decision"] == "keep" and "margin" in v2.tags["promotion_reason"]
    assert v2.tags["trained_until"] == "2025-01-10T00:00:00"
    lines = [json.loads(line) for line in audit.read_text().splitlines()]
    assert [line["decision"] for line in lines] == ["promote", "keep", "promote"]
    assert lines[2]["champion_version"] == "1" and lines[2]["challenger_version"] == "3"
    assert lines[2]["champion_metrics"]["rmse"] == 10.0 and lines[2]["margin"] == 1.0
    assert {"machine_id", "family", "reason", "time"} <= set(lines[0])
    # a fresh dataset (e.g. an edge_export-only run) reads the registry's champion
    production = MlflowPromotionDataset(registered_model_name=name, audit_path=str(audit))
    with mlflow.start_run():
        loaded = production.load()
    assert loaded["registry_version"] == "3" and loaded["model"]["family"] == "regression"


def _aliases(client: MlflowClient, name: str) -> dict:
    found = {}
    for which in (CHALLENGER, CHAMPION, PREVIOUS_CHAMPION):
        try:
            found[which] = str(client.get_model_version_by_alias(name, which).version)
        except MlflowException:
            pass
    return found


def test_a_failed_run_leaves_no_alias_and_a_finished_one_moves_them_at_its_end(tracking, tmp_path):
    name, audit = "m1-regression", tmp_path / "promotions.jsonl"
    hold_alias_moves()  # the run guard hook does this when a Kedro run starts
    try:
        with mlflow.start_run():
            failed = train_and_promote(name, audit, 10.0, None)
    finally:
        dropped = drop_held_alias_moves()  # ... and this when the run fails or is interrupted
    assert failed["registry_version"] == "1"
    assert [alias for _, alias, _ in dropped] == [CHALLENGER, CHAMPION]
    assert _aliases(tracking, name) == {}  # v1 exists, but nothing points at it
    hold_alias_moves()
    with mlflow.start_run():
        train_and_promote(name, audit, 9.0, None)
        assert _aliases(tracking, name) == {}  # held while the run goes
    applied = apply_held_alias_moves()  # every node succeeded
    assert [(alias, version) for _, alias, version in applied] == [
        (CHALLENGER, "2"),
        (CHAMPION, "2"),
    ]
    assert _aliases(tracking, name) == {CHALLENGER: "2", CHAMPION: "2"}
    registered = MlflowModelRegistryDataset(registered_model_name=name)
    with mlflow.start_run():
        registered.save(entry(8.0))  # outside a held run: at once
    assert _aliases(tracking, name)[CHALLENGER] == "3"


def test_without_an_active_run_nothing_is_registered_and_the_run_s_model_flows(tracking, tmp_path):
    registered = MlflowModelRegistryDataset(registered_model_name="m1-none")
    registered.save(entry(1.0))
    assert tracking.search_registered_models(filter_string="name = 'm1-none'") == []
    package = registered.load()
    assert package["registry_version"] is None and package["model"]["family"] == "regression"
    assert MlflowAliasDataset(registered_model_name="m1-none").load() is None
    with pytest.raises(DatasetError, match="no challenger"):
        MlflowModelRegistryDataset(registered_model_name="m1-none").load()


def test_is_better():
    assert is_better(0.9, 0.8, True) and not is_better(0.8, 0.8, True)
    assert is_better(5.0, 6.0, False) and is_better(1.0, None, True)
    assert not is_better(None, 1.0, True)
