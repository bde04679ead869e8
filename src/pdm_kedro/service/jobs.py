"""Training jobs: ``kedro run --namespaces <machine>`` in a separate process, then a bundle reload.

- bounded: at most ``training.max_queue`` jobs queued or running (more answer 429);
- one job per machine at a time (409 names the job in the way), across worker processes: a job
  holds ``<state>/locks/<machine>.lock`` (created with ``O_EXCL``) until it ends;
- a job record is a JSON file ``<state>/jobs/<job_id>.json`` (written atomically) and its output
  ``<job_id>.log``, so any worker answers ``GET /v1/jobs/{id}``, with live stage progress and log
  tail read from the log;
- after a successful run the service rescans the bundles: a changed bundle is swapped in
  atomically (see :mod:`pdm_kedro.service.registry`); the record gets the versions before and
  after and the promotion decisions (``08_reporting/promotions.jsonl`` when the pipeline writes
  it, else the MLflow registry's ``promotion_decision`` tags of the new versions).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import queue
import re
import shutil
import subprocess
import sys
import threading
import time
import uuid
from collections import deque
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pdm_kedro.families import family_names
from pdm_kedro.paths import data_root, mlflow_tracking_uri, project_root
from pdm_kedro.service.errors import ServiceError

logger = logging.getLogger(__name__)

COMPLETED = re.compile(r"Completed (\d+) out of (\d+) tasks")
# the project's plain progress line (pdm_kedro.console.progress): "... run 48/65 nodes, ..."
NODES_RUN = re.compile(r"\brun (\d+)/(\d+) nodes\b")
RUNNING = re.compile(r"Running node: ([\w.\-\[\]]+)")
TERMINAL = ("succeeded", "failed")
FAMILIES = family_names()  # the families of pdm_kedro.families


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def kedro_executable() -> str:
    """The ``kedro`` script beside the running interpreter."""
    candidate = Path(sys.executable).with_name("kedro")
    return str(candidate) if candidate.exists() else (shutil.which("kedro") or "kedro")


def read_progress(log_path: Path, tail_lines: int) -> tuple[dict[str, Any], list[str]]:
    """Stage progress (tasks completed of total, node running) and the log's last lines."""
    completed = total = 0
    node = None
    tail: deque[str] = deque(maxlen=tail_lines)
    if log_path.is_file():
        with log_path.open(errors="replace") as handle:
            for raw in handle:
                line = raw.rstrip()
                if not line.strip():
                    continue
                tail.append(line)
                if m := COMPLETED.search(line) or NODES_RUN.search(line):
                    completed, total = int(m.group(1)), int(m.group(2))
                if m := RUNNING.search(line):
                    node = m.group(1).rstrip(":")
    progress = {
        "tasks_completed": completed,
        "tasks_total": total or None,
        "fraction": round(completed / total, 3) if total else 0.0,
        "current_node": node,
        "stage": node.split(".")[-1] if node else None,
    }
    return progress, list(tail)


class JobManager:
    """The job queue of one worker process (records and locks are shared through files)."""

    def __init__(self, state_dir: Path, config: Any, registry: Any) -> None:
        self.config = config
        self.registry = registry
        self.jobs_dir = Path(state_dir) / "jobs"
        self.locks_dir = Path(state_dir) / "locks"
        self.jobs_dir.mkdir(parents=True, exist_ok=True)
        self.locks_dir.mkdir(parents=True, exist_ok=True)
        self._queue: queue.Queue[str] = queue.Queue()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._work, name="training-jobs", daemon=True)
        self._process: subprocess.Popen | None = None
        self._thread.start()

    # -- records -------------------------------------------------------------------------------
    def _record_path(self, job_id: str) -> Path:
        return self.jobs_dir / f"{job_id}.json"

    def _write(self, record: dict[str, Any]) -> None:
        path = self._record_path(record["job_id"])
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(record, indent=2))
        os.replace(tmp, path)

    def _read(self, job_id: str) -> dict[str, Any] | None:
        path = self._record_path(job_id)
        if not re.fullmatch(r"[0-9a-f]{32}", job_id) or not path.is_file():
            return None
        try:
            return json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            return None

    # -- locks ---------------------------------------------------------------------------------
    def _lock_path(self, machine_id: str) -> Path:
        return self.locks_dir / f"{machine_id}.lock"

    def _lock_is_stale(self, path: Path) -> bool:
        try:
            holder = json.loads(path.read_text())
        except FileNotFoundError:
            return True
        except (OSError, json.JSONDecodeError):  # being written right now, or left broken
            try:
                return time.time() - path.stat().st_mtime > 5
            except FileNotFoundError:
                return True
        record = self._read(str(holder.get("job_id", "")))
        if record is None or record["state"] in TERMINAL:
            return True
        return not _pid_alive(int(holder.get("pid", -1)))

    def _active_locks(self) -> list[dict[str, Any]]:
        active = []
        for path in self.locks_dir.glob("*.lock"):
            if self._lock_is_stale(path):
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
                continue
            with contextlib.suppress(OSError, json.JSONDecodeError):
                active.append(json.loads(path.read_text()))
        return active

    def active_counts(self) -> dict[str, int]:
        """Jobs queued or running in every worker."""
        counts = {"queued": 0, "running": 0}
        for holder in self._active_locks():
            record = self._read(holder["job_id"])
            if record is not None and record["state"] in counts:
                counts[record["state"]] += 1
        return counts

    # -- API -----------------------------------------------------------------------------------
    def command(self, machine_id: str, params: dict[str, Any]) -> list[str]:
        """The ``kedro run`` of one machine with the service's environment and conf source."""
        cmd = [kedro_executable(), "run", "--namespaces", machine_id]
        if self.config.env:
            cmd += ["--env", self.config.env]
        conf = self.config.conf_source
        if conf is not None and Path(conf).resolve() != (project_root() / "conf").resolve():
            cmd += ["--conf-source", str(conf)]
        if params:
            cmd += ["--params", ",".join(f"{k}={v}" for k, v in sorted(params.items()))]
        return cmd

    def submit(self, machine_id: str, params: dict[str, Any]) -> dict[str, Any]:
        """Queue a job (429 when the queue is full, 409 when the machine already has one)."""
        active = self._active_locks()
        if len(active) >= self.config.training.max_queue:
            raise ServiceError(
                429,
                "job_queue_full",
                f"{len(active)} training jobs are queued or running (the limit is "
                f"{self.config.training.max_queue}); retry when one has finished.",
                headers={"Retry-After": "30"},
            )
        job_id = uuid.uuid4().hex
        machine = self.registry.get(machine_id)
        record = {
            "job_id": job_id,
            "machine_id": machine_id,
            "state": "queued",
            "created_at": _now(),
            "started_at": None,
            "finished_at": None,
            "command": self.command(machine_id, params),
            "params": params,
            "pid": os.getpid(),
            "versions_before": _versions(machine),
            "versions_after": None,
            "promotion": [],
            "served_bundle_changed": None,
            "error": None,
            "returncode": None,
        }
        self._write(record)  # first the record, so a lock never points at a missing job
        lock = self._lock_path(machine_id)
        holder_text = json.dumps({"job_id": job_id, "pid": os.getpid(), "machine_id": machine_id})
        for _attempt in range(2):
            try:
                fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                if self._lock_is_stale(lock):
                    with contextlib.suppress(FileNotFoundError):
                        lock.unlink()
                    continue
                self._record_path(job_id).unlink(missing_ok=True)
                try:
                    holder = json.loads(lock.read_text())["job_id"]
                except (OSError, json.JSONDecodeError, KeyError):
                    holder = "(starting)"
                raise ServiceError(
                    409,
                    "job_in_progress",
                    f"Machine {machine_id} already has training job {holder} queued or "
                    "running: one job per machine at a time.",
                    details=[{"job_id": holder}],
                ) from None
            with os.fdopen(fd, "w") as handle:
                handle.write(holder_text)
            break
        else:  # pragma: no cover - the lock kept reappearing
            self._record_path(job_id).unlink(missing_ok=True)
            raise ServiceError(409, "job_in_progress", f"Machine {machine_id} is locked.")
        self._queue.put(job_id)
        from pdm_kedro.service.metrics import JOBS  # noqa: PLC0415

        JOBS.labels("submitted").inc()
        return record

    def status(self, job_id: str) -> dict[str, Any] | None:
        """The job record with live progress and log tail (``None`` for an unknown id)."""
        record = self._read(job_id)
        if record is None:
            return None
        progress, tail = read_progress(
            self.jobs_dir / f"{job_id}.log", self.config.training.log_tail_lines
        )
        if record["state"] == "succeeded":
            progress["fraction"] = 1.0
        return {**record, "progress": progress, "log_tail": tail}

    # -- the worker ----------------------------------------------------------------------------
    def _work(self) -> None:
        while not self._stop.is_set():
            try:
                job_id = self._queue.get(timeout=0.5)
            except queue.Empty:
                continue
            try:
                self._run(job_id)
            except Exception as err:  # noqa: BLE001 - a job failure must not stop the queue
                logger.exception("training job %s crashed", job_id)
                record = self._read(job_id) or {"job_id": job_id}
                record.update(state="failed", finished_at=_now(), error=repr(err))
                self._write(record)
            finally:
                with contextlib.suppress(FileNotFoundError):
                    lock = self._lock_path((self._read(job_id) or {}).get("machine_id", ""))
                    lock.unlink()

    def _run(self, job_id: str) -> None:
        from pdm_kedro.service.metrics import JOBS  # noqa: PLC0415

        record = self._read(job_id)
        if record is None:
            return
        machine_id = record["machine_id"]
        record.update(state="running", started_at=_now())
        self._write(record)
        started = time.time()
        env = dict(os.environ)
        env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        env.update({"COLUMNS": "200", "KEDRO_DISABLE_TELEMETRY": "1", "DO_NOT_TRACK": "1"})
        env.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
        log_path = self.jobs_dir / f"{job_id}.log"
        with log_path.open("w") as log:
            self._process = subprocess.Popen(
                record["command"],
                cwd=project_root(),
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            try:
                returncode = self._process.wait(timeout=self.config.training.timeout_seconds)
            except subprocess.TimeoutExpired:
                os.killpg(self._process.pid, 15)
                self._process.wait(timeout=30)
                returncode = None
            finally:
                self._process = None
        record["returncode"] = returncode
        if returncode != 0:
            record.update(
                state="failed",
                finished_at=_now(),
                error=(
                    f"timed out after {self.config.training.timeout_seconds:g} s"
                    if returncode is None
                    else f"kedro run exited {returncode}; see log_tail"
                ),
            )
            self._write(record)
            JOBS.labels("failed").inc()
            return
        self.registry.scan()  # swap the new bundle in now (the watcher may have done it already)
        after = self.registry.get(machine_id)
        before = record.get("versions_before") or {}
        record.update(
            state="succeeded",
            finished_at=_now(),
            versions_after=_versions(after),
            served_bundle_changed=bool(
                after is not None and after.bundle_version != before.get("bundle_version")
            ),
            promotion=promotion_decisions(machine_id, started),
        )
        self._write(record)
        JOBS.labels("succeeded").inc()

    def stop(self) -> None:
        """Stop the worker thread (and a running training process)."""
        self._stop.set()
        process = self._process
        if process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, 15)
        self._thread.join(timeout=5)


def _versions(machine: Any) -> dict[str, Any] | None:
    if machine is None:
        return None
    return {
        "bundle_version": machine.bundle_version,
        "created_at": machine.created_at,
        "families": machine.versions,
    }


def promotion_decisions(machine_id: str, since: float) -> list[dict[str, Any]]:
    """Promotion decisions of the run: ``promotions.jsonl`` rows, else MLflow version tags."""
    path = data_root() / "08_reporting" / "promotions.jsonl"
    rows: list[dict[str, Any]] = []
    if path.is_file():
        for line in path.read_text().splitlines():
            with contextlib.suppress(json.JSONDecodeError):
                row = json.loads(line)
                if row.get("machine_id") == machine_id and _after(row, since):
                    rows.append(row)
        if rows:
            return rows
    uri = mlflow_tracking_uri()
    if uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).is_file():
        return rows  # no store yet: reading must not create one (MLflow would)
    try:
        from mlflow import MlflowClient  # noqa: PLC0415

        client = MlflowClient(tracking_uri=uri)
        for family in FAMILIES:
            name = f"{machine_id}-{family}"
            try:
                champion = str(client.get_registered_model(name).aliases.get("champion"))
            except Exception:  # noqa: BLE001 - not registered
                continue
            for version in client.search_model_versions(f"name='{name}'"):
                if version.creation_timestamp / 1000 < since - 1:
                    continue
                rows.append(
                    {
                        "machine_id": machine_id,
                        "family": family,
                        "registered_model": name,
                        "version": str(version.version),
                        "decision": version.tags.get("promotion_decision"),
                        "champion": str(version.version) == champion,
                        "score_name": version.tags.get("score_name"),
                        "score": version.tags.get("score"),
                        "source": "mlflow",
                    }
                )
    except Exception as err:  # noqa: BLE001 - the run succeeded; the registry is extra
        rows.append({"machine_id": machine_id, "error": f"MLflow registry not readable: {err}"})
    return rows


def _after(row: dict[str, Any], since: float) -> bool:
    for key in ("decided_at", "timestamp", "created_at", "at"):
        if key in row:
            try:
                return datetime.fromisoformat(str(row[key])).timestamp() >= since - 1
            except ValueError:
                return True
    return True
