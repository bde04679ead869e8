"""The run guard hook (``pdm_kedro.hooks.RunGuardHook``): one run per machine and data root,
aliases only after success, SIGINT / SIGTERM as one clear error, dead runs marked FAILED."""

from __future__ import annotations

import signal

import mlflow
import pytest
from kedro.io import DataCatalog
from kedro.pipeline import Node, Pipeline
from mlflow.tracking import MlflowClient

from pdm_kedro.datasets.mlflow_model_registry import _HELD, set_alias
from pdm_kedro.hooks import RunGuardHook, RunInterrupted, fail_stale_run, run_machines
from pdm_kedro.locks import RunLockedError, acquire_run_lock


def _identity(x):
    return x


def _pipeline(*machines: str) -> Pipeline:
    return Pipeline(
        [
            Node(_identity, f"{m}.a", f"{m}.b", name=f"{m}.copy", namespace=f"{m}.regression")
            for m in machines
        ]
    )


@pytest.fixture()
def guard(tmp_path, monkeypatch):
    monkeypatch.setenv("PDM_DATA_ROOT", str(tmp_path))
    hook = RunGuardHook()
    yield hook
    hook._restore_signals()  # noqa: SLF001 (a failed test must not leave handlers behind)
    hook._release()  # noqa: SLF001


def test_the_machines_of_a_run_are_its_namespaces_first_parts():
    assert run_machines(_pipeline("b", "a")) == ["a", "b"]


def test_a_run_holds_its_machines_until_it_ends(guard, tmp_path):
    guard.before_pipeline_run(run_params={}, pipeline=_pipeline("m1"), catalog=DataCatalog())
    with pytest.raises(RunLockedError, match="Machine m1 is already being run"):
        acquire_run_lock("m1", tmp_path, {"pid": 0})
    other, _ = acquire_run_lock("m2", tmp_path, {"pid": 0})  # another machine runs beside it
    other.release()
    guard.after_pipeline_run()
    lock, previous = acquire_run_lock("m1", tmp_path, {"pid": 0})
    assert previous == {}  # released cleanly
    lock.release()


def test_sigint_and_sigterm_become_one_clear_error_and_handlers_come_back(guard):
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    for signum, code in ((signal.SIGINT, 130), (signal.SIGTERM, 143)):
        guard.before_pipeline_run(run_params={}, pipeline=_pipeline("m1"), catalog=DataCatalog())
        with pytest.raises(RunInterrupted) as err:
            signal.raise_signal(signum)
        assert err.value.exit_code == code
        assert len(err.value.message.splitlines()) == 1
        assert "FAILED" in err.value.message and "no model alias" in err.value.message
        guard.on_pipeline_error(error=err.value)
        assert {s: signal.getsignal(s) for s in before} == before


def test_alias_moves_are_held_during_a_run_and_dropped_on_failure(guard):
    calls = []

    class Client:
        def set_registered_model_alias(self, *args):
            calls.append(args)

    guard.before_pipeline_run(run_params={}, pipeline=_pipeline("m1"), catalog=DataCatalog())
    set_alias(Client(), "m1-regression", "champion", 4)
    assert calls == [] and _HELD.moves == [("m1-regression", "champion", "4")]
    guard.on_pipeline_error(error=RuntimeError("a node failed"))
    assert _HELD.moves == [] and not _HELD.holding
    set_alias(Client(), "m1-regression", "champion", 5)  # outside a run: at once
    assert calls == [("m1-regression", "champion", "5")]


def test_a_dead_runs_mlflow_run_is_marked_failed(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(uri)
    experiment = client.create_experiment("e", artifact_location=(tmp_path / "a").as_uri())
    run = client.create_run(experiment)
    assert client.get_run(run.info.run_id).info.status == "RUNNING"
    previous = {"pid": 1, "machine": "m1", "mlflow_run_id": run.info.run_id}
    assert fail_stale_run({**previous, "mlflow_tracking_uri": uri}) == run.info.run_id
    assert client.get_run(run.info.run_id).info.status == "FAILED"
    assert fail_stale_run({**previous, "mlflow_tracking_uri": uri}) is None  # only once
    assert fail_stale_run({"pid": 1}) is None  # died before its MLflow run started
    assert mlflow.active_run() is None
