"""Run the fleet as one Dask task per machine, each machine in its own Kedro session.

By default (``isolation="session"``) a task runs the machine's pipelines in a new
``KedroSession`` inside its Dask worker process, which stays warm: the project is bootstrapped
and the libraries imported once per worker (:class:`WarmKedroWorker`), not once per machine.
One machine per session still (no session ever builds thousands of namespaces), nothing of
Kedro or kedro-mlflow is pickled, and what a session leaves in the process (an MLflow active
run, environment variables, the console streams) is put back after every task.
``isolation="process"`` runs ``kedro run --pipelines <machine_id>`` in a subprocess instead (a
crash stays in its process, at about 6 s of Kedro start-up per machine). A failed machine is
resubmitted up to ``retries`` times while the others go on; every machine's output is kept in
``<data root>/08_reporting/fleet_run/<machine_id>.log``. After the machine runs, the
fleet-level ``fleet_metrics`` is built from the machines that succeeded
(:func:`write_fleet_metrics`, itself a task on a warm worker).
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import re
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from distributed.diagnostics.plugin import WorkerPlugin

from pdm_kedro.config_check import CHECK_MACHINES_ENV
from pdm_kedro.distributed.config_loader import machine_scope
from pdm_kedro.distributed.forkserver import (
    ONE_THREAD_ENV,
    _environ,
    start_worker_forkserver,
)

ISOLATIONS = ("session", "process")
# Dask config of the LocalCluster (its scheduler in the command's process, its workers get it
# from their nannies): Dask's monitoring for its dashboard, which the LocalCluster does not serve,
# runs less often. On 2 cores every one of these wake-ups is taken from a machine's run:
# - the statistical profiler samples the task thread's stack every 10 ms: off;
# - the event-loop health tick (every 20 ms in the scheduler, each nanny and each worker): 1 s
#   (a loop blocked for more than its 3 s limit is still reported);
# - the system monitor (CPU, memory, network, disk of every process, every 0.5 s): 5 s;
# - the workers' memory check (every 0.1 s): 1 s (the nanny's memory limit still applies).
# Measured on two machines on 2 workers (CPU seconds of each machine's task): 25.6 / 26.3 s with
# Dask's defaults, 24.3 / 25.3 s without the profiler, 23.5 / 24.3 s with all four.
# Workers started by `dask worker` take the same settings from the environment
# (DASK_DISTRIBUTED__WORKER__PROFILE__ENABLED=False, ...: docs/scale_out.md).
LOCAL_CLUSTER_CONFIG = {
    # workers forked from a server that imported the run's libraries (start_worker_forkserver)
    "distributed.worker.multiprocessing-method": "forkserver",
    "distributed.worker.profile.enabled": False,
    "distributed.admin.tick.interval": "1s",
    "distributed.admin.system-monitor.interval": "5s",
    "distributed.worker.memory.monitor-interval": "1s",
}

# Variables a task passes to its `kedro run` (the worker may live on another host).
FORWARDED_ENV = (
    "PDM_DATA_ROOT", "PDM_MLFLOW_TRACKING_URI", "KEDRO_DISABLE_TELEMETRY", "DO_NOT_TRACK",
    "MLFLOW_DISABLE_TELEMETRY", "PYTHONPATH", "KEDRO_LOGGING_CONFIG",
)  # fmt: skip
ANSI = re.compile(r"\x1b\[[0-9;]*m")
BOX = re.compile(r"[│╭╮╰╯─┃]")


class SchedulerUnreachableError(RuntimeError):
    """No Dask scheduler answers at the given address."""


class MachineRunError(RuntimeError):
    """One machine's ``kedro run`` failed; the message is its error line."""


@dataclass
class MachineOutcome:
    """How one machine's run ended."""

    machine_id: str
    status: str = "pending"  # pending, running, done, failed
    attempts: int = 0
    seconds: float | None = None
    # CPU seconds of the task's process (session mode): the rest of ``seconds`` it waited
    cpu_s: float | None = None
    error: str | None = None
    worker: str | None = None


@dataclass
class FleetRunResult:
    """Every machine's outcome and the run's wall time."""

    outcomes: dict[str, MachineOutcome]
    wall_s: float
    scheduler: str
    tracking_uri: str | None
    fleet_metrics: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def succeeded(self) -> list[str]:
        return [m for m, o in self.outcomes.items() if o.status == "done"]

    @property
    def failed(self) -> list[str]:
        return [m for m, o in self.outcomes.items() if o.status == "failed"]

    def as_dict(self) -> dict[str, Any]:
        return {
            "wall_s": self.wall_s,
            "scheduler": self.scheduler,
            "tracking_uri": self.tracking_uri,
            "fleet_metrics": self.fleet_metrics,
            "machines": {m: asdict(o) for m, o in self.outcomes.items()},
            **self.extra,
        }


def error_line(output: str, context_lines: int = 3, limit: int = 400) -> str:
    """What went wrong in a failed ``kedro run``: its last error line and the lines after it."""
    lines = [BOX.sub("", ANSI.sub("", line)).strip() for line in output.splitlines()]
    lines = [line for line in lines if line]
    pattern = re.compile(r"^(\w+\.)*\w*(Error|Exception|Exit)\b.*?:|^Error:")
    for index in range(len(lines) - 1, -1, -1):
        if pattern.match(lines[index]):
            text = " / ".join(lines[index : index + 1 + context_lines])
            return text if len(text) <= limit else text[: limit - 3] + "..."
    return lines[-1] if lines else "no output"


def run_machine_process(
    machine_id: str,
    project_path: str,
    env: dict[str, str],
    kedro_env: str | None = None,
    log_dir: str | None = None,
    extra_args: Sequence[str] = (),
) -> dict[str, Any]:
    """A Dask task: ``kedro run --pipelines <machine_id>`` in its own process and session."""
    import socket  # noqa: PLC0415

    command = [sys.executable, "-m", "kedro", "run", "--pipelines", machine_id]
    if kedro_env:
        command += ["--env", kedro_env]
    command += list(extra_args)
    started = time.perf_counter()
    # this machine's session checks this machine's config block (one bad file fails one task)
    proc_env = {**os.environ, **env, CHECK_MACHINES_ENV: machine_id}
    result = subprocess.run(  # noqa: S603
        command, cwd=project_path, env=proc_env, capture_output=True, text=True, check=False
    )
    seconds = time.perf_counter() - started
    output = result.stdout + "\n" + result.stderr
    if log_dir:
        Path(log_dir).mkdir(parents=True, exist_ok=True)
        (Path(log_dir) / f"{machine_id}.log").write_text(
            f"$ {' '.join(command)}\n# exit {result.returncode} after {seconds:.1f} s\n{output}"
        )
    if result.returncode != 0:
        raise MachineRunError(f"{machine_id}: {error_line(output)}")
    return {"machine_id": machine_id, "seconds": seconds, "worker": socket.gethostname()}


def import_run_libraries() -> None:
    """Import what every machine's run imports: Kedro's session, kedro-mlflow's hooks (MLflow)
    and every stage's nodes (xgboost, scikit-learn, statsmodels, ONNX, matplotlib, ...).
    About 5.5 s of CPU; nothing of the project's configuration is read."""
    import kedro.framework.session  # noqa: F401, PLC0415
    import kedro_mlflow.framework.hooks  # noqa: F401, PLC0415 (the hooks' imports: mlflow)

    from pdm_kedro import pipeline_registry  # noqa: PLC0415

    pipeline_registry.discover_templates()
    # imported on a run's way rather than by the modules above: MLflow's start_run looks for
    # Databricks' dbutils through IPython and tags the run with its git commit (GitPython);
    # Pandera's checks register its Hypothesis strategies; Kedro loads the plugins' hooks
    import git  # noqa: F401, PLC0415
    import IPython  # noqa: F401, PLC0415
    import pandera.strategies  # noqa: F401, PLC0415

    for plugin in entry_points(group="kedro.hooks"):  # what Kedro loads into each session
        plugin.load()


@functools.cache
def warm_up(project_path: str) -> str:
    """Bootstrap the project in this process once and import what every run imports.

    Returns the project's package name. The working directory becomes the project (the
    project's paths and ``kedro run`` resolve from it), numerical libraries get one thread.
    In a worker forked from :func:`start_worker_forkserver` the imports are done already.
    """
    for name, value in ONE_THREAD_ENV.items():
        os.environ.setdefault(name, value)
    os.chdir(project_path)
    from kedro.framework.startup import bootstrap_project  # noqa: PLC0415

    metadata = bootstrap_project(Path(project_path))
    import_run_libraries()
    return metadata.package_name


class WarmKedroWorker(WorkerPlugin):
    """Dask worker plugin: :func:`warm_up` when a worker starts, before its first task."""

    name = "pdm-kedro-warm-up"

    def __init__(self, project_path: str, env: dict[str, str]) -> None:
        self.project_path = project_path
        self.env = env

    def setup(self, worker: Any) -> None:  # noqa: ARG002 (plugin API)
        """Bootstrap the project in the worker process."""
        with _environ(self.env):
            warm_up(self.project_path)


@contextlib.contextmanager
def _output_to(log_path: Path | None) -> Iterator[None]:
    """The task's console output (``print``, rich, logging stream handlers) into its log file."""
    if log_path is None:
        yield
        return
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("a", encoding="utf-8") as log:
        moved = []
        for handler in {h for lg in _loggers() for h in lg.handlers}:
            stream = getattr(handler, "stream", None)
            if isinstance(handler, logging.StreamHandler) and stream in {
                sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__,
            }:  # fmt: skip
                moved.append((handler, handler.setStream(log)))
        try:
            with contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
                yield
        finally:
            for handler, stream in moved:
                handler.setStream(stream)


def _loggers() -> list[logging.Logger]:
    root = logging.getLogger()
    named = [
        lg for lg in logging.Logger.manager.loggerDict.values() if isinstance(lg, logging.Logger)
    ]
    return [root, *named]


def _end_active_mlflow_run(status: str) -> None:
    """End an MLflow run a session left active in this process (the next machine's session
    would otherwise log into it)."""
    mlflow = sys.modules.get("mlflow")
    if mlflow is not None:
        while mlflow.active_run() is not None:
            mlflow.end_run(status)


def run_machine_session(
    machine_id: str,
    project_path: str,
    env: dict[str, str],
    kedro_env: str | None = None,
    log_dir: str | None = None,
) -> dict[str, Any]:
    """A Dask task: the machine's pipelines in a new ``KedroSession`` in this warm worker.

    ``KedroSession.run(pipeline_names=[machine_id])``: what ``kedro run --pipelines
    <machine_id>`` runs, every project hook included (run locks, config check of this machine,
    kedro-mlflow). The config loaders read only this machine's file (and the priority ones).
    """
    import socket  # noqa: PLC0415

    started, cpu_started = time.perf_counter(), time.process_time()
    log_path = Path(log_dir) / f"{machine_id}.log" if log_dir else None
    if log_path is not None:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        log_path.write_text(f"# {machine_id}: KedroSession in worker pid {os.getpid()}\n")
    task_env = {**env, CHECK_MACHINES_ENV: machine_id}
    failure = None
    with _environ(task_env), _output_to(log_path):
        warm_up(project_path)
        from kedro.framework.session import KedroSession  # noqa: PLC0415

        try:
            with machine_scope([machine_id]):
                with KedroSession.create(project_path=Path(project_path), env=kedro_env) as session:
                    session.run(pipeline_names=[machine_id])
        except BaseException as error:  # noqa: BLE001 (reported as the task's error, below)
            traceback.print_exc()
            failure = f"{type(error).__name__}: {error}"
            _end_active_mlflow_run("FAILED")
        else:
            _end_active_mlflow_run("FINISHED")
    seconds, cpu_s = time.perf_counter() - started, time.process_time() - cpu_started
    if log_path is not None:
        with log_path.open("a", encoding="utf-8") as log:
            log.write(
                f"# {'failed' if failure else 'done'} after {seconds:.1f} s ({cpu_s:.1f} s CPU)\n"
            )
    if failure is not None:
        lines = [line.strip() for line in failure.splitlines() if line.strip()]
        text = " / ".join(lines[:4])
        raise MachineRunError(f"{machine_id}: {text if len(text) <= 400 else text[:397] + '...'}")
    return {
        "machine_id": machine_id, "seconds": seconds, "cpu_s": cpu_s, "worker": socket.gethostname(),
    }  # fmt: skip


def connect(scheduler: str | None, workers: int, timeout: float = 10.0):  # noqa: ANN201
    """A Dask client: on ``scheduler`` (``tcp://host:8786``) or on a new LocalCluster.

    The LocalCluster has ``workers`` single-threaded worker processes (each task's work happens
    in its own ``kedro run`` process anyway). Returns ``(client, cluster or None)``.
    """
    from dask.distributed import Client, LocalCluster  # noqa: PLC0415

    if scheduler:
        try:
            return Client(scheduler, timeout=timeout), None
        except (OSError, TimeoutError) as error:
            raise SchedulerUnreachableError(
                f"No Dask scheduler answers at {scheduler} (within {timeout:.0f} s): start one "
                "with `dask scheduler` and workers with `dask worker <address>`, or leave out "
                "--scheduler to run on a LocalCluster."
            ) from error
    import dask  # noqa: PLC0415

    start_worker_forkserver()  # already running when the command started it early
    with dask.config.set(LOCAL_CLUSTER_CONFIG):
        cluster = LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
            silence_logs=40,  # errors only: the progress display is the console
        )
    return Client(cluster), cluster


def run_fleet(  # noqa: PLR0914
    machines: Sequence[str],
    project_path: Path,
    env: dict[str, str],
    *,
    workers: int = 2,
    scheduler: str | None = None,
    kedro_env: str | None = None,
    retries: int = 0,
    log_dir: Path | None = None,
    on_change: Callable[[dict[str, MachineOutcome]], None] | None = None,
    client: Any = None,
    isolation: str = "session",
) -> tuple[dict[str, MachineOutcome], float, str]:
    """Run every machine as a Dask task; a failed one is resubmitted up to ``retries`` times.

    ``isolation``: ``session`` (a KedroSession in the warm worker process) or ``process`` (a
    ``kedro run`` subprocess per machine). Returns each machine's outcome, the wall time and
    the scheduler address used. With ``client`` (from :func:`connect`) the caller keeps and
    closes the cluster.
    """
    if isolation not in ISOLATIONS:
        raise ValueError(f"isolation {isolation!r}: one of {', '.join(ISOLATIONS)}")
    task = run_machine_session if isolation == "session" else run_machine_process
    from dask.distributed import as_completed  # noqa: PLC0415

    outcomes = {m: MachineOutcome(m) for m in machines}
    notify = on_change or (lambda _outcomes: None)
    own = client is None
    if own:
        client, cluster = connect(scheduler, workers)
    address = client.scheduler.address
    started = time.perf_counter()
    try:
        if isolation == "session":
            warm_workers(client, project_path, env)

        def submit(machine_id: str):  # noqa: ANN202
            outcome = outcomes[machine_id]
            outcome.attempts += 1
            outcome.status = "running"
            return client.submit(
                task,
                machine_id,
                str(project_path),
                env,
                kedro_env,
                str(log_dir) if log_dir else None,
                key=f"kedro-run-{machine_id}-attempt-{outcome.attempts}",
                pure=False,
            )

        futures = {submit(m): m for m in machines}
        notify(outcomes)
        pending = as_completed(list(futures))
        for future in pending:
            machine_id = futures.pop(future)
            outcome = outcomes[machine_id]
            if future.status == "finished":
                result = future.result()
                outcome.status, outcome.seconds = "done", result["seconds"]
                outcome.cpu_s = result.get("cpu_s")
                outcome.worker, outcome.error = result["worker"], None
            else:
                error = future.exception()
                outcome.error = str(error) or type(error).__name__
                if outcome.attempts <= retries:
                    retry = submit(machine_id)
                    futures[retry] = machine_id
                    pending.add(retry)
                else:
                    outcome.status = "failed"
            future.release()
            notify(outcomes)
    finally:
        if own:
            client.close()
            if cluster is not None:
                cluster.close()
    return outcomes, time.perf_counter() - started, address


def longest_first(machines: Sequence[str], previous_summary: Path | None) -> tuple[list[str], str]:
    """``machines`` in the order to submit them, and how it was chosen.

    With a previous fleet run's ``summary.json`` (its seconds per machine), the machines go
    longest first (machines it did not time first of all, in the given order): the classic
    longest-processing-time rule, so the run does not end with one worker busy on a long machine
    while the others idle. Without one (or unreadable), the given order.
    """
    seconds: dict[str, float] = {}
    if previous_summary is not None and previous_summary.is_file():
        try:
            recorded = json.loads(previous_summary.read_text())["machines"]
            seconds = {
                m: float(o["seconds"])
                for m, o in recorded.items()
                if o.get("status") == "done" and o.get("seconds")
            }
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            seconds = {}
    if not seconds:
        return list(machines), "as given (no previous run timed these machines)"
    position = {m: i for i, m in enumerate(machines)}
    ordered = sorted(machines, key=lambda m: (m in seconds, -seconds.get(m, 0.0), position[m]))
    known = sum(m in seconds for m in machines)
    return (
        ordered,
        f"longest first by the previous run's seconds ({known} of {len(machines)} timed)",
    )


def forwarded_env(**overrides: str) -> dict[str, str]:
    """The variables a task's ``kedro run`` gets from the command's environment."""
    env = {name: os.environ[name] for name in FORWARDED_ENV if name in os.environ}
    env.update(overrides)
    return env


def warm_workers(client: Any, project_path: Path, env: dict[str, str]) -> None:
    """Register :class:`WarmKedroWorker` (every worker, also one that joins later, bootstraps
    the project once); returns when the current workers are warm."""
    client.register_plugin(WarmKedroWorker(str(project_path), env), name=WarmKedroWorker.name)


def write_fleet_metrics(
    project_path: Path | str,
    kedro_env: str | None,
    machines: list[str],
    env: dict[str, str] | None = None,
) -> str:
    """Build ``fleet_metrics`` for ``machines`` with the reporting stage's fleet node.

    The fleet-level node is not namespaced, so per-machine runs never include it. Here it is
    built for exactly the machines that ran (their ``<machine>.<family>.metrics`` as the
    registry names them) and run through Kedro's runner on the project's catalog. Runs in the
    calling process or as a task on a warm worker (``env``: the variables the machine tasks
    had). Returns the saved file's path.
    """
    from kedro.framework.project import pipelines  # noqa: PLC0415
    from kedro.framework.session import KedroSession  # noqa: PLC0415
    from kedro.runner import SequentialRunner  # noqa: PLC0415

    from pdm_kedro.pipelines import reporting  # noqa: PLC0415

    # check the machines that ran, read only their files (and the priority ones)
    task_env = {**(env or {}), CHECK_MACHINES_ENV: ",".join(machines)}
    with _environ(task_env), machine_scope(machines):
        package = warm_up(str(project_path))
        pipelines.configure(f"{package}.pipeline_registry")  # a registry of these machines
        with KedroSession.create(project_path=Path(project_path), env=kedro_env) as session:
            context = session.load_context()
            names = reporting.metrics_datasets(pipelines[m] for m in machines)
            pipe = reporting.create_fleet_pipeline(names)
            catalog = context.catalog
            SequentialRunner().run(pipe, catalog)
            return str(catalog.get("fleet_metrics")._filepath)  # noqa: SLF001
