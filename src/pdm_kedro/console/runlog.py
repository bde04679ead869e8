"""The run log file, and log lines that say which machine (and family) they are about.

``conf/logging.yml`` keeps the console quiet (Kedro's per-dataset and per-node INFO lines and
third-party library warnings do not reach it). Everything still goes to the run log file under
the data root, ``<data root>/logs/kedro_run.log`` (a test's ``PDM_DATA_ROOT`` keeps it out of the
project). The session's records are held in memory from its start and the file is (re)written
only once the run is admitted (the run guard took its machines' locks): a second run refused
because its machine is already running must not truncate the running one's log.
"""

from __future__ import annotations

import contextvars
import logging
from collections import deque
from pathlib import Path

RUN_LOG = Path("logs") / "kedro_run.log"
FILE_FORMAT = "%(asctime)s %(levelname)-8s %(name)s: %(message)s"
PROJECT_LOGGER = "pdm_kedro"

# "<machine>" or "<machine>/<family>" of the node running in this thread (set by the hook).
current_scope: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "pdm_kedro_scope", default=None
)
_base_factory = logging.getLogRecordFactory()
_installed = False


def scope_of(namespace: str | None) -> str | None:
    """``"m1/classification"`` for namespace ``m1.classification``; None for fleet-level nodes."""
    if not namespace:
        return None
    return namespace.replace(".", "/")


def _record_factory(*args, **kwargs) -> logging.LogRecord:
    record = _base_factory(*args, **kwargs)
    scope = current_scope.get()
    if scope and record.name.startswith(PROJECT_LOGGER + "."):
        machine = scope.split("/")[0]
        message = record.getMessage()
        if machine not in message:  # the line does not name its machine: prefix the node's scope
            record.msg = f"{scope}: {message}"
            record.args = None
    return record


def install_scope_prefix() -> None:
    """Prefix project log lines that do not name their machine with ``<machine>/<family>: ``."""
    global _installed  # noqa: PLW0603
    if not _installed:
        logging.setLogRecordFactory(_record_factory)
        _installed = True


def adopt_library_loggers(config: dict) -> None:
    """Give back to ``conf/logging.yml`` the loggers a library configured on import after it.

    MLflow sets up its ``mlflow`` logger itself (its own stderr handler, no propagation) when it
    is first imported, which happens after Kedro applied the project's logging config. For every
    logger the config declares with ``propagate: true``, drop the handlers the library added and
    let its records propagate (to the quiet console and the run log) as the config says.
    """
    for name, spec in (config.get("loggers") or {}).items():
        if not isinstance(spec, dict) or not spec.get("propagate", False) or spec.get("handlers"):
            continue
        target = logging.getLogger(name)
        for handler in list(target.handlers):
            target.removeHandler(handler)
        target.propagate = True
        if "level" in spec:
            target.setLevel(spec["level"])


def _propagation_roots() -> list[logging.Logger]:
    """The root logger plus every configured logger that does not propagate to it."""
    roots = [logging.getLogger()]
    for name, logger in logging.Logger.manager.loggerDict.items():
        if isinstance(logger, logging.Logger) and not logger.propagate and name != "":
            roots.append(logger)
    return roots


class PendingRecords(logging.Handler):
    """Holds a session's records until its run is admitted (at most ``capacity``, the newest)."""

    def __init__(self, capacity: int = 100_000) -> None:
        super().__init__(level=logging.INFO)
        self.records: deque[logging.LogRecord] = deque(maxlen=capacity)

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


class RunLog:
    """The run log of the current session, attached where every record ends up: records held
    in memory from :meth:`open`, written to the file from :meth:`start_file` on."""

    def __init__(self) -> None:
        self.handler: logging.Handler | None = None
        self.path: Path | None = None
        self._attached: list[logging.Logger] = []

    def open(self, data_root: Path, machine: str | None = None) -> Path:
        """Start collecting the session's records for ``<data_root>/logs/kedro_run.log``; the
        file is not touched until :meth:`start_file`.

        ``machine``: the session runs that one machine as a task of ``pdm-kedro fleet run``,
        next to other machines' sessions on the same data root: its log is
        ``logs/kedro_run_<machine>.log`` (one shared file was truncated by every session and
        written by two at once)."""
        self.close()
        self.path = data_root / (
            RUN_LOG if machine is None else RUN_LOG.with_name(f"kedro_run_{machine}.log")
        )
        self._attach(PendingRecords())
        return self.path

    def start_file(self) -> Path | None:
        """Overwrite the log file with the records held so far and write every later one to it
        (the run was admitted). No-op when no session opened the log or the file is written."""
        pending = self.handler
        if not isinstance(pending, PendingRecords) or self.path is None:
            return self.path
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handler = logging.FileHandler(self.path, mode="w", encoding="utf-8")
        handler.setLevel(logging.INFO)
        handler.setFormatter(logging.Formatter(FILE_FORMAT))
        for record in pending.records:
            handler.handle(record)
        self._detach()
        self._attach(handler)
        return self.path

    def close(self) -> None:
        """Detach and close the handler (a second session opens a new one); records of a run
        never admitted are dropped with it (the console said why)."""
        self._detach()

    def _attach(self, handler: logging.Handler) -> None:
        for logger in _propagation_roots():
            logger.addHandler(handler)
            self._attached.append(logger)
        self.handler = handler

    def _detach(self) -> None:
        if self.handler is None:
            return
        for logger in self._attached:
            logger.removeHandler(self.handler)
        self.handler.close()
        self.handler, self._attached = None, []
