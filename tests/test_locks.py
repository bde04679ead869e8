"""Two first runs at once on a fresh embedded MLflow store: created/migrated once under a lock."""

from __future__ import annotations

import multiprocessing
import sqlite3

import pytest

from pdm_kedro.locks import file_lock, init_tracking_store


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
