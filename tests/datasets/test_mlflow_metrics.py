"""The batched metrics dataset: what kedro-mlflow's dataset stores, in one request."""

from __future__ import annotations

import mlflow
import pytest
from kedro_mlflow.io.metrics import MlflowMetricsHistoryDataset
from mlflow.tracking import MlflowClient

from pdm_kedro.datasets.mlflow_metrics import MlflowMetricsBatchDataset

METRICS = {
    "f1": {"value": 0.61, "step": 0},
    "pr_auc": {"value": 0.7, "step": 0},
    "mape.current": [{"value": 9.5, "step": 0}, {"value": 8.25, "step": 1}],
}


@pytest.fixture
def store(tmp_path):
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    # an experiment of this store (another test of the worker may have set an active one)
    mlflow.set_experiment("metrics-batch")
    yield
    while mlflow.active_run() is not None:
        mlflow.end_run()
    mlflow.set_tracking_uri(None)


def _saved_by(cls, monkeypatch) -> tuple[dict, dict[str, int]]:
    calls = {"log_batch": 0, "log_metric": 0}
    for name in calls:
        real = getattr(MlflowClient, name)

        def counting(self, *args, _real=real, _name=name, **kwargs):  # noqa: ANN001, ANN202
            calls[_name] += 1
            return _real(self, *args, **kwargs)

        monkeypatch.setattr(MlflowClient, name, counting)
    with mlflow.start_run():
        dataset = cls(prefix="m1.classification")
        dataset.save(METRICS)
        loaded = dataset.load()
    monkeypatch.undo()
    return loaded, calls


def test_one_request_stores_what_kedro_mlflow_stores(store, monkeypatch) -> None:
    theirs, their_calls = _saved_by(MlflowMetricsHistoryDataset, monkeypatch)
    ours, our_calls = _saved_by(MlflowMetricsBatchDataset, monkeypatch)
    assert ours == theirs
    assert ours["m1.classification.mape.current"] == [
        {"step": 0, "value": 9.5},
        {"step": 1, "value": 8.25},
    ]
    assert their_calls == {"log_batch": 0, "log_metric": 4}
    assert our_calls == {"log_batch": 1, "log_metric": 0}


def test_switched_off_it_logs_nothing(store) -> None:
    with mlflow.start_run() as run:
        dataset = MlflowMetricsBatchDataset(prefix="m1.classification")
        dataset._logging_activated = False  # what kedro-mlflow's hook does for untracked pipelines
        dataset.save(METRICS)
    assert MlflowClient().get_run(run.info.run_id).data.metrics == {}
