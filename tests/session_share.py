"""One real run per test session, also when pytest-xdist runs the suite in several workers.

A session fixture of pytest is per process: with ``-n 2`` (pyproject's addopts) each worker would
make its own ``kedro run``. ``once_per_session`` makes the first worker that needs it build it in
a folder all workers of the session share (beside their own temporary folders), under a file
lock; the others wait for it and read what it returned (JSON: paths, strings, numbers, lists,
dicts). A build that failed is not retried by the next worker: it fails with the same message.

The documented commands a test ran are appended to one file per session as well
(``record_ran`` / ``ran_in_session``) so that the controller's session-end check sees the runs of
every worker.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

RAN_LOG_ENV = "PDM_TESTS_RAN_LOG"  # set by the controller (tests/conftest.py) for every worker


def is_worker(config: pytest.Config) -> bool:
    """True in a pytest-xdist worker (the controller and a plain run are not workers)."""
    return hasattr(config, "workerinput")


def shared_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder every worker of this session sees (the plain run's own base folder)."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _encode(value: object) -> object:
    if isinstance(value, Path):
        return {"__path__": str(value)}
    if isinstance(value, dict):
        return {key: _encode(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_encode(item) for item in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    raise TypeError(f"a shared session result holds {type(value).__name__}, not JSON")


def _decode(value: object) -> object:
    if isinstance(value, dict):
        if set(value) == {"__path__"}:
            return Path(value["__path__"])
        return {key: _decode(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_decode(item) for item in value]
    return value


def once_per_session(
    tmp_path_factory: pytest.TempPathFactory, name: str, build: Callable[[Path], dict]
) -> dict:
    """``build(folder)`` run once per session in ``<shared>/<name>``; every caller gets its result."""
    shared = shared_dir(tmp_path_factory)
    done, failed = shared / f"{name}.json", shared / f"{name}.failed"
    with _locked(shared / f"{name}.lock"):
        if failed.exists():
            pytest.fail(f"the session's {name} failed in another worker:\n{failed.read_text()}")
        if done.exists():
            return _decode(json.loads(done.read_text()))
        folder = shared / name
        folder.mkdir()
        try:
            value = build(folder)
        except BaseException as error:
            failed.write_text(f"{type(error).__name__}: {error}"[-6000:])
            raise
        done.write_text(json.dumps(_encode(value)))
        return value


def record_ran(commands: Iterable[str]) -> None:
    """Append documented commands that ran to the session's log (when the controller set one)."""
    log = os.environ.get(RAN_LOG_ENV)
    if not log:
        return
    with _locked(Path(log)), Path(log).open("a") as out:
        out.writelines(f"{json.dumps(command)}\n" for command in commands)


def ran_in_session() -> set[str]:
    """Every documented command any worker of this session recorded."""
    log = os.environ.get(RAN_LOG_ENV)
    if not log or not Path(log).is_file():
        return set()
    return {json.loads(line) for line in Path(log).read_text().splitlines() if line.strip()}
