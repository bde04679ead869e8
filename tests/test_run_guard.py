"""The run guard hook (``pdm_kedro.hooks.RunGuardHook``): one run per machine and data root,
aliases only after success, SIGINT / SIGTERM as one clear error, dead runs marked FAILED."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import time
import weakref
from pathlib import Path

import mlflow
import pytest
from kedro.io import DataCatalog, DatasetError
from kedro.pipeline import Node, Pipeline
from mlflow.tracking import MlflowClient

from pdm_kedro.datasets.mlflow_model_registry import _HELD, drop_held_alias_moves, set_alias
from pdm_kedro.hooks import RunGuardHook, RunInterrupted, fail_stale_run, run_machines
from pdm_kedro.locks import RunLockedError, acquire_run_lock
from tests.conftest import PROJECT_ROOT, TEST_MACHINE
from tests.docs.kedro_cli import isolated_env, kedro_executable, make_project_shim


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
    drop_held_alias_moves()


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


def test_an_interruption_kedro_wrapped_still_ends_as_run_interrupted(guard):
    guard.before_pipeline_run(run_params={}, pipeline=_pipeline("m1"), catalog=DataCatalog())
    with pytest.raises(RunInterrupted) as interrupted:
        signal.raise_signal(signal.SIGTERM)
    wrapped = DatasetError("Failed while saving data to dataset ParquetDataset(...)")
    wrapped.__cause__ = interrupted.value  # what AbstractDataset.save does to any exception
    with pytest.raises(RunInterrupted) as err:
        guard.on_pipeline_error(error=wrapped)
    assert err.value.exit_code == 143 and err.value.__cause__ is wrapped


def test_an_interruption_a_library_swallowed_still_fails_the_run(guard):
    guard.before_pipeline_run(run_params={}, pipeline=_pipeline("m1"), catalog=DataCatalog())
    set_alias(None, "m1-regression", "champion", 4)  # held: no client needed
    try:
        signal.raise_signal(signal.SIGINT)
    except RunInterrupted:
        pass  # e.g. a library's `except Exception: retry`: the run went on to the end
    with pytest.raises(RunInterrupted):
        guard.after_pipeline_run()
    assert _HELD.moves == [] and not _HELD.holding  # the moves were dropped, not applied


def test_an_interruption_in_a_weakref_callback_prints_no_traceback_and_fails_the_run(guard):
    """Ctrl-C can land while Python runs a finaliser or weakref callback: Python swallows the
    error there ("Exception ignored in ...", a traceback on stderr). The run guard's
    unraisable hook keeps that quiet (the run still ends FAILED at its end); any other
    unraisable error still reaches the previous hook; the hook is restored when the run ends."""
    seen = []
    previous = sys.unraisablehook
    sys.unraisablehook = seen.append
    try:
        guard.before_pipeline_run(run_params={}, pipeline=_pipeline("m1"), catalog=DataCatalog())

        class Owner:
            pass

        def interrupted(_ref):
            signal.raise_signal(signal.SIGINT)  # the handler raises RunInterrupted in here

        owner = Owner()
        ref = weakref.ref(owner, interrupted)
        del owner  # the callback runs now; its RunInterrupted is unraisable
        assert ref() is None and seen == []

        def broken(_ref):
            raise ValueError("a real finaliser bug")

        other = Owner()
        ref2 = weakref.ref(other, broken)
        del other
        assert ref2() is None and [type(u.exc_value) for u in seen] == [ValueError]
        with pytest.raises(RunInterrupted):
            guard.after_pipeline_run()
        assert sys.unraisablehook == seen.append  # restored
    finally:
        sys.unraisablehook = previous


def test_ctrl_c_while_the_run_ends_still_marks_its_mlflow_run_failed(guard, tmp_path):
    """Ctrl-C just after the last node, while the run guard's own end hook starts (before it
    restores the signal handlers): the run is marked FAILED and no alias moves, not left for
    MLflow's exit handler to end as FINISHED."""
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'end.db'}")
    guard.before_pipeline_run(run_params={}, pipeline=_pipeline("m1"), catalog=DataCatalog())
    set_alias(None, "m1-regression", "champion", 4)  # held: no client needed
    restore = guard._restore_signals  # noqa: SLF001
    calls = []

    def interrupted_first():
        if not calls:
            calls.append(1)
            signal.raise_signal(signal.SIGINT)  # lands before the handlers are restored
        restore()

    guard._restore_signals = interrupted_first  # noqa: SLF001
    # an explicit experiment of this store: an earlier test of the same process may have left
    # MLflow's active experiment id pointing into another store
    run = mlflow.start_run(experiment_id=MlflowClient().create_experiment("end"))
    try:
        with pytest.raises(RunInterrupted):
            guard.after_pipeline_run()
    finally:
        if mlflow.active_run() is not None:
            mlflow.end_run()
    assert MlflowClient().get_run(run.info.run_id).info.status == "FAILED"
    assert _HELD.moves == [] and not _HELD.holding


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


def _wait_for(predicate, timeout: float, what: str, process, poll_s: float = 0.5) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        if process.poll() is not None:
            raise AssertionError(f"the run ended before {what}: {process.communicate()}")
        time.sleep(poll_s)
    raise AssertionError(f"timed out waiting for {what}")


def _rows(db: Path, query: str) -> list:
    if not db.exists():
        return []
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as con:
            return con.execute(query).fetchall()
    except sqlite3.OperationalError:  # tables not created yet, or busy
        return []


@pytest.mark.slow
def test_a_real_run_refuses_a_second_run_of_its_machine_and_ends_failed_on_ctrl_c(tmp_path):
    """Two `kedro run -e small --namespaces <m>` at once: the second refuses in one line naming
    the first; Ctrl-C on the first once a promotion was decided (a version registered, aliases
    asked for): one line, exit 130, its MLflow run FAILED, no alias on any version, the lock
    free again."""
    machine = TEST_MACHINE
    shim = make_project_shim(tmp_path)
    env = {**isolated_env(tmp_path), "PYTHONPATH": str(PROJECT_ROOT / "src")}
    command = [kedro_executable(), "run", "-e", "small", "--namespaces", machine]
    db = tmp_path / "mlflow.db"
    first = subprocess.Popen(command, cwd=shim, env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        lock = tmp_path / "data" / ".locks" / f"{machine}.lock"
        _wait_for(lambda: "mlflow_run_id" in (lock.read_text() if lock.exists() else ""),
                  180, "the first node", first)  # fmt: skip
        # the first run is paused while the second starts (Kedro's start-up takes longer than
        # the rest of a small run on an idle machine): it still holds its lock, and has nodes
        # left to interrupt afterwards
        first.send_signal(signal.SIGSTOP)
        try:
            second = subprocess.run(command, cwd=shim, env=env, capture_output=True, text=True,
                                    timeout=180, check=False)  # fmt: skip
        finally:
            first.send_signal(signal.SIGCONT)
        assert second.returncode == 2, second.stderr[-2000:]
        refusal = [line for line in second.stderr.splitlines() if "already being run" in line]
        assert len(refusal) == 1 and f"pid {first.pid}" in refusal[0], second.stderr[-2000:]
        assert "Traceback" not in second.stderr
        log = tmp_path / "data" / "logs" / "kedro_run.log"
        text = log.read_text(errors="replace")  # the refused run truncated nothing of it
        assert "\x00" not in text and "nodes of 1 machines" in text, text[:2000]
        # the first family's decision (regression's, about a third of the nodes before the
        # end), watched closely: an idle small run finishes about 1.5 s after it
        promoted = f"Completed node: {machine}.regression.decide_promotion"
        _wait_for(lambda: promoted in log.read_text(errors="replace"), 300,
                  "a promotion decision (aliases asked for)", first, poll_s=0.05)  # fmt: skip
        first.send_signal(signal.SIGINT)
        _, stderr = first.communicate(timeout=120)
    finally:
        if first.poll() is None:
            first.kill()
            first.communicate()
    assert first.returncode == 130, stderr[-3000:]
    assert "Traceback" not in stderr and "Aborted!" not in stderr
    assert stderr.strip().splitlines()[-1].startswith("Error: Run interrupted by SIGINT (Ctrl-C)")
    assert [s for (s,) in _rows(db, "select status from runs")] == ["FAILED"]
    assert _rows(db, "select name from model_versions")  # versions were registered ...
    assert _rows(db, "select * from registered_model_aliases") == []  # ... none got an alias
    lock_file, previous = acquire_run_lock(machine, tmp_path / "data", {"pid": 0})
    assert previous == {}  # the interrupted run released its lock
    lock_file.release()
