"""File locks for runs sharing one host: the embedded MLflow store is created or migrated once,
under an exclusive lock, before any run of the session uses it.

Two ``kedro run`` started at the same moment on a fresh project (no ``mlflow.db`` yet) otherwise
race MLflow's schema migration (``duplicate column name``, ``_alembic_tmp_metrics already
exists``) and leave the store broken for every later run. ``fcntl.flock`` locks are released by
the kernel when the holder dies, so a killed run never leaves a stale lock behind.
"""

from __future__ import annotations

import fcntl
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

logger = logging.getLogger(__name__)

SQLITE_PREFIX = "sqlite:///"


@contextmanager
def file_lock(path: str | Path) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``path`` (created if needed) for the ``with`` block."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def init_tracking_store(uri: str, artifact_location: str | None = None) -> bool:
    """Create or migrate an embedded sqlite MLflow store once, under ``<db>.lock``.

    Returns True when ``uri`` is a sqlite store (initialised now or found ready), False for any
    other store (a server initialises its own).
    """
    if not uri.startswith(SQLITE_PREFIX):
        return False
    db = Path(uri.removeprefix(SQLITE_PREFIX))
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore  # noqa: PLC0415

    with file_lock(db.with_name(db.name + ".lock")):
        # creating the store creates the tables of a new file or verifies an existing schema
        store = SqlAlchemyStore(
            uri, artifact_location or db.parent.joinpath("mlartifacts").as_uri()
        )
        store.engine.dispose()
    logger.debug("MLflow store %s ready", db)
    return True
