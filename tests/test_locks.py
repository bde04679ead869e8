"""Two first runs at once on a fresh embedded MLflow store: created/migrated once under a lock;
one run per machine and data root (run locks with a stale-lock rule)."""

from __future__ import annotations

import multiprocessing
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading

import pytest

from pdm_kedro.locks import (
    RunLockedError,
    acquire_run_lock,
    acquire_run_locks,
    file_lock,
    init_tracking_store,
)
from tests.conftest import PROJECT_ROOT


def _init(uri: str) -> None:
    init_tracking_store(uri)


@pytest.mark.slow
def test_concurrent_first_inits_share_one_store(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_init, args=(uri,)) for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0, 0]
    with sqlite3.connect(tmp_path / "mlflow.db") as db:
        assert db.execute("select count(*) from alembic_version").fetchone()[0] == 1
        assert db.execute("select count(*) from experiments").fetchone()[0] == 1


def test_other_stores_are_left_alone():
    assert init_tracking_store("http://127.0.0.1:5000") is False


def test_file_lock_is_reentrant_across_blocks(tmp_path):
    with file_lock(tmp_path / "a.lock"):
        pass
    with file_lock(tmp_path / "a.lock"):
        assert (tmp_path / "a.lock").exists()


# --- per-machine run locks -----------------------------------------------------------------------

HOLD_SCRIPT = """
import json, socket, sys, time
from pathlib import Path
from pdm_kedro.locks import acquire_run_lock
holder = {"pid": int(sys.argv[3]) if len(sys.argv) > 3 else __import__("os").getpid(),
          "host": socket.gethostname(), "started_at": "2026-12-07T01:00:00+00:00",
          "command": "kedro run --namespaces " + sys.argv[2]}
lock, _ = acquire_run_lock(sys.argv[2], Path(sys.argv[1]), holder)
print("held", flush=True)
time.sleep(60)
"""


def _hold(root, machine, fake_pid=None):
    """A child process holding ``machine``'s run lock (until killed)."""
    args = [sys.executable, "-c", HOLD_SCRIPT, str(root), machine]
    if fake_pid is not None:
        args.append(str(fake_pid))
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT / "src")}  # this tree's code
    child = subprocess.Popen(args, stdout=subprocess.PIPE, text=True, cwd=PROJECT_ROOT, env=env)
    assert child.stdout.readline().strip() == "held"
    return child


def _holder():
    return {"pid": os.getpid(), "host": socket.gethostname(), "started_at": "now", "command": "t"}


def test_a_second_run_of_a_machine_is_refused_naming_the_running_one(tmp_path):
    child = _hold(tmp_path, "m1")
    try:
        with pytest.raises(RunLockedError) as err:
            acquire_run_lock("m1", tmp_path, _holder())
        message = err.value.message
        assert len(message.splitlines()) == 1
        assert f"pid {child.pid}" in message and "2026-12-07T01:00:00" in message
        assert "Machine m1" in message and "kedro run --namespaces m1" in message
        other, previous = acquire_run_lock("m2", tmp_path, _holder())  # other machines run
        assert previous == {}
        other.release()
    finally:
        child.kill()
        child.wait()


def test_a_killed_runs_lock_is_taken_over_with_its_holder(tmp_path):
    child = _hold(tmp_path, "m1")
    child.send_signal(signal.SIGKILL)
    child.wait()
    lock, previous = acquire_run_lock("m1", tmp_path, _holder())
    assert previous["pid"] == child.pid  # the dead run, for its MLflow run to be marked FAILED
    lock.release()
    lock, previous = acquire_run_lock("m1", tmp_path, _holder())
    assert previous == {}  # a clean release leaves no holder behind
    lock.release()


def test_a_lock_held_for_a_dead_pid_is_broken(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()  # its pid is free now: the lock file names a process that no longer exists
    child = _hold(tmp_path, "m1", fake_pid=dead.pid)
    try:
        lock, _ = acquire_run_lock("m1", tmp_path, _holder())
        lock.release()
    finally:
        child.kill()
        child.wait()


def test_a_second_run_can_wait_for_the_first(tmp_path):
    child = _hold(tmp_path, "m1")
    timer = threading.Timer(1.0, child.kill)
    timer.start()
    try:
        lock, previous = acquire_run_lock("m1", tmp_path, _holder(), wait_s=30)
        assert previous["pid"] == child.pid
        lock.release()
    finally:
        timer.cancel()
        child.kill()
        child.wait()


def test_locks_of_several_machines_are_all_or_nothing(tmp_path):
    child = _hold(tmp_path, "b")
    try:
        with pytest.raises(RunLockedError):
            acquire_run_locks(["c", "a", "b"], tmp_path, _holder())
        locks, _ = acquire_run_locks(["a", "c"], tmp_path, _holder())  # a was released
        assert [lock.machine for lock in locks] == ["a", "c"]
        for lock in locks:
            lock.release()
    finally:
        child.kill()
        child.wait()
