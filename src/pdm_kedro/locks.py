"""File locks for runs sharing one host: the embedded MLflow store is created or migrated once,
under an exclusive lock, before any run of the session uses it; a machine is run by one run at a
time per data root (:func:`acquire_run_locks`).

Two ``kedro run`` started at the same moment on a fresh project (no ``mlflow.db`` yet) otherwise
race MLflow's schema migration (``duplicate column name``, ``_alembic_tmp_metrics already
exists``) and leave the store broken for every later run. ``fcntl.flock`` locks are released by
the kernel when the holder dies, so a killed run never leaves a stale lock behind.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click

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


RUN_LOCK_DIR = ".locks"  # under the data root: one lock file per machine
RUN_LOCK_WAIT_ENV = "PDM_RUN_LOCK_WAIT"  # seconds a second run of a machine waits (default 0)
RUN_LOCK_POLL_S = 0.5


class RunLockedError(click.ClickException):
    """Another run of the same machine on the same data root holds its lock: one line, exit 2."""

    exit_code = 2


@dataclass
class RunLock:
    """A machine's run lock held by this process (an open, ``flock``-ed file with the holder)."""

    machine: str
    path: Path
    fd: int
    holder: dict[str, Any] = field(default_factory=dict)

    def update(self, **info: Any) -> None:
        """Add ``info`` (e.g. the MLflow run id) to what the lock file says about its holder."""
        self.holder.update(info)
        _write_holder(self.fd, self.holder)

    def release(self) -> None:
        """Empty the file (a clean end leaves no holder behind) and release the lock."""
        if self.fd < 0:
            return
        try:
            os.ftruncate(self.fd, 0)
            fcntl.flock(self.fd, fcntl.LOCK_UN)
        finally:
            os.close(self.fd)
            self.fd = -1


def _write_holder(fd: int, holder: dict[str, Any]) -> None:
    data = json.dumps(holder, sort_keys=True).encode()
    os.ftruncate(fd, 0)
    os.pwrite(fd, data, 0)


def _read_holder(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8").strip()
        return json.loads(text) if text else {}
    except (OSError, ValueError):
        return {}


def pid_alive(pid: Any) -> bool:
    """Whether process ``pid`` exists on this host."""
    try:
        os.kill(int(pid), 0)
    except (ProcessLookupError, ValueError, TypeError):
        return False
    except PermissionError:
        return True
    return True


def describe_holder(machine: str, holder: dict[str, Any], root: Path) -> str:
    """One line naming the run that holds ``machine``'s lock."""
    who = f"pid {holder.get('pid', '?')}"
    started = holder.get("started_at", "an unknown time")
    command = holder.get("command")
    return (
        f"Machine {machine} is already being run on this data root ({root}) by {who} "
        f"(started {started}{', ' + command if command else ''}). Wait for it to finish, stop it "
        f"(kill {holder.get('pid', '<pid>')}), or set {RUN_LOCK_WAIT_ENV}=<seconds> to wait."
    )


def _try_lock(path: Path) -> int | None:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def acquire_run_lock(
    machine: str, root: Path, holder: dict[str, Any], wait_s: float = 0.0
) -> tuple[RunLock, dict[str, Any]]:
    """Take ``machine``'s run lock under ``root`` (``<root>/.locks/<machine>.lock``).

    Held by a live run: wait up to ``wait_s`` seconds, then :class:`RunLockedError` naming it.
    Stale-lock rule: the kernel releases a dead process's ``flock``, so a killed run's lock is
    taken over at once; a lock still held although its recorded pid is dead on this host (forked
    children kept it) is broken by replacing the file. Returns the lock and the previous holder
    when it died without releasing (its file was not emptied), else ``{}``.
    """
    folder = Path(root) / RUN_LOCK_DIR
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{machine}.lock"
    deadline = time.monotonic() + max(0.0, wait_s)
    waited = False
    while True:
        fd = _try_lock(path)
        if fd is not None:
            break
        current = _read_holder(path)
        if (
            current.get("pid")
            and current.get("host") == holder.get("host")
            and not pid_alive(current["pid"])
        ):
            logger.warning(
                "%s: the run lock's holder (pid %s) is dead; breaking its lock",
                machine,
                current["pid"],
            )
            path.unlink(missing_ok=True)
            continue
        if time.monotonic() >= deadline:
            raise RunLockedError(describe_holder(machine, current, Path(root)))
        if not waited:
            logger.warning("%s", describe_holder(machine, current, Path(root)) + " Waiting.")
            waited = True
        time.sleep(RUN_LOCK_POLL_S)
    previous = _read_holder(path)
    lock = RunLock(machine, path, fd, dict(holder))
    _write_holder(fd, lock.holder)
    if previous:
        logger.warning(
            "%s: took over the run lock of pid %s (started %s), which ended without releasing it",
            machine,
            previous.get("pid"),
            previous.get("started_at"),
        )
    return lock, previous


def acquire_run_locks(
    machines: list[str], root: Path, holder: dict[str, Any], wait_s: float = 0.0
) -> tuple[list[RunLock], list[dict[str, Any]]]:
    """Every machine's run lock, in sorted order (two runs never wait on each other in a
    cycle); on a refusal the locks already taken are released."""
    locks: list[RunLock] = []
    stale: list[dict[str, Any]] = []
    try:
        for machine in sorted(set(machines)):
            lock, previous = acquire_run_lock(machine, root, holder, wait_s)
            locks.append(lock)
            if previous:
                stale.append({**previous, "machine": machine})
    except BaseException:
        for lock in locks:
            lock.release()
        raise
    return locks, stale
