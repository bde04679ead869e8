"""Project hooks."""

from __future__ import annotations

import logging
import os
import signal
import socket
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
import kedro.framework.project as kedro_project
from kedro.framework.context import KedroContext
from kedro.framework.hooks import hook_impl
from kedro.pipeline import Pipeline
from kedro.pipeline.node import Node

from pdm_kedro import pipeline_registry
from pdm_kedro.config_check import check_parameters
from pdm_kedro.datasets.edge_bundle import (
    EdgeBundleDataset,
    discard_staged_bundle,
    promote_staged_bundle,
    staging_dir,
)
from pdm_kedro.datasets.mlflow_model_registry import (
    apply_held_alias_moves,
    drop_held_alias_moves,
    hold_alias_moves,
)
from pdm_kedro.locks import RUN_LOCK_WAIT_ENV, RunLock, acquire_run_locks, init_tracking_store
from pdm_kedro.paths import (
    data_root,
    mlflow_artifact_location,
    mlflow_tracking_uri,
    use_session_env,
)

logger = logging.getLogger(__name__)

INTERRUPT_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class ConfigEnvHook:
    """Let the pipeline registry see the session's configuration environment.

    ``register_pipelines()`` gets no config, and ``kedro run -e cmapss`` does not set
    ``KEDRO_ENV``. A session creates its context (this hook) before it first reads the pipelines,
    so recording ``context.env`` here makes the registry build the machines of that environment.
    ``tryfirst``: before plugin hooks, which may read the pipelines through ``context.params``.
    """

    @hook_impl(tryfirst=True)
    def after_context_created(self, context: KedroContext) -> None:
        """Record the environment the registry reads the machine list from."""
        changed = pipeline_registry.use_config_env(context.env)
        package = kedro_project.PACKAGE_NAME  # set by bootstrap_project, so read it now
        if changed and package:
            # a second session in the same process with another env: rebuild the registry
            kedro_project.pipelines.configure(f"{package}.pipeline_registry")
        # the embedded MLflow store is created/migrated once, under a file lock, before
        # kedro-mlflow or any run touches it (two first runs at once raced the migration); the
        # session's env picks which store (data/<env>/mlflow.db), so record it first
        use_session_env(context.env)
        init_tracking_store(mlflow_tracking_uri(), mlflow_artifact_location())


class ConfigCheckHook:
    """Validate the session's configuration once, when its context is created: before the
    pipelines are read and before any node runs (see :mod:`pdm_kedro.config_check`)."""

    @hook_impl(tryfirst=True)
    def after_context_created(self, context: KedroContext) -> None:
        """Raise :class:`pdm_kedro.config_check.ConfigError` naming file, key and allowed values.

        Checks the parameters as configured (the files and ``--params``), read from the config
        loader: ``context.params`` would also validate them against the type hints of every
        registered pipeline's nodes, building each (the session validates the ones it runs)."""
        parameters = context.config_loader["parameters"]
        check_parameters(parameters, Path(context.config_loader.conf_source), context.env)


class RunInterrupted(click.ClickException):
    """SIGINT (Ctrl-C) or SIGTERM during a run: one line, exit code 128 + the signal number."""

    def __init__(self, signum: int) -> None:
        name = signal.Signals(signum).name
        super().__init__(
            f"Run interrupted by {name}{' (Ctrl-C)' if signum == signal.SIGINT else ''}: its "
            "MLflow run is marked FAILED, no model alias moved, the last good edge bundles are "
            "kept. Rerun the same command to start again."
        )
        self.exit_code = 128 + signum


def fail_stale_run(previous: dict[str, Any]) -> str | None:
    """Mark the MLflow run of a run that died holding a machine's lock FAILED (if still RUNNING).
    Returns its id when it was marked."""
    run_id = previous.get("mlflow_run_id")
    if not run_id:
        return None
    from mlflow.exceptions import MlflowException  # noqa: PLC0415 (MLflow only when needed)
    from mlflow.tracking import MlflowClient  # noqa: PLC0415

    try:
        client = MlflowClient(previous.get("mlflow_tracking_uri") or None)
        if client.get_run(run_id).info.status != "RUNNING":
            return None
        client.set_tag(run_id, "pdm.ended", f"died (pid {previous.get('pid')}); lock taken over")
        client.set_terminated(run_id, "FAILED")
    except MlflowException as err:
        logger.warning("could not mark the dead run's MLflow run %s FAILED: %s", run_id, err)
        return None
    logger.warning(
        "%s: MLflow run %s of dead pid %s marked FAILED",
        previous.get("machine"),
        run_id,
        previous.get("pid"),
    )
    return str(run_id)


def run_machines(pipeline: Pipeline) -> list[str]:
    """The machines a pipeline runs (first part of its nodes' namespaces)."""
    return sorted({n.namespace.split(".")[0] for n in pipeline.nodes if n.namespace})


class RunGuardHook:
    """What keeps a run from breaking what the last good run left (issue 18).

    - One run per machine and data root (:func:`pdm_kedro.locks.acquire_run_locks`): a second
      run of the same machine refuses (or waits ``PDM_RUN_LOCK_WAIT`` seconds) with a line naming
      the running one; a dead run's lock is taken over and its MLflow run marked FAILED.
    - Model aliases move only once every node succeeded (held back until ``after_pipeline_run``,
      dropped on an error or interruption).
    - SIGINT / SIGTERM during a run become :class:`RunInterrupted`, an error Kedro passes to
      ``on_pipeline_error`` (kedro-mlflow then marks the MLflow run FAILED) and the CLI prints
      as one line.
    - A machine's edge bundle is replaced as a whole once its manifest (written after every
      parity check) is saved in the staging folder
      (:func:`pdm_kedro.datasets.edge_bundle.promote_staged_bundle`).
    """

    def __init__(self) -> None:
        self._locks: list[RunLock] = []
        self._bundles: dict[str, tuple[Path, str]] = {}
        self._handlers: dict[int, Any] = {}
        self._run_recorded = False
        self._interrupted: int | None = None
        self._previous_unraisablehook: Any = None

    @hook_impl(tryfirst=True)
    def before_pipeline_run(
        self, run_params: dict[str, Any], pipeline: Pipeline, catalog: Any
    ) -> None:
        """Take the machines' run locks, clear stale staging folders, hold alias moves and
        turn SIGINT / SIGTERM into :class:`RunInterrupted`."""
        self._release()  # a previous run of this process that never reached its end hooks
        machines = run_machines(pipeline)
        holder = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]])[:300],
            "session_id": run_params.get("run_id"),
        }
        wait_s = float(os.environ.get(RUN_LOCK_WAIT_ENV, "0") or 0)
        self._locks, stale = acquire_run_locks(machines, data_root(), holder, wait_s)
        for previous in stale:
            fail_stale_run(previous)
        self._bundles = {}
        outputs = pipeline.all_outputs()
        for machine in machines:
            name = f"{machine}.edge_manifest"
            if name not in outputs:
                continue
            try:
                dataset = catalog.get(f"{machine}.edge_bundle", fallback_to_runtime_pattern=True)
            except Exception:  # noqa: BLE001 (a catalog without the live bundle: nothing to swap)
                continue
            if isinstance(dataset, EdgeBundleDataset):
                if discard_staged_bundle(dataset.path):
                    logger.warning("%s: removed an unfinished export's staging folder", machine)
                self._bundles[name] = (dataset.path, machine)
        hold_alias_moves()
        self._run_recorded = False
        self._interrupted = None
        if threading.current_thread() is threading.main_thread():
            for signum in INTERRUPT_SIGNALS:
                self._handlers[signum] = signal.signal(signum, self._interrupt)
            if self._previous_unraisablehook is None:
                self._previous_unraisablehook = sys.unraisablehook
                sys.unraisablehook = self._unraisable

    def _unraisable(self, unraisable: Any) -> None:
        """An interruption raised while Python ran a finaliser or weakref callback is swallowed
        there ("Exception ignored in ...", with a traceback on stderr). It is recorded
        (``_interrupted``) and ends the run FAILED at its end, so it prints nothing here; any
        other unraisable exception goes to the previous hook."""
        if isinstance(unraisable.exc_value, RunInterrupted):
            return
        (self._previous_unraisablehook or sys.__unraisablehook__)(unraisable)

    def _interrupt(self, signum: int, frame: Any) -> None:  # noqa: ARG002 (signal API)
        self._restore_signals()  # a second Ctrl-C stops at once
        self._interrupted = signum
        raise RunInterrupted(signum)

    def _restore_signals(self) -> None:
        for signum, handler in self._handlers.items():
            signal.signal(signum, handler)
        self._handlers = {}

    @hook_impl
    def before_node_run(self, node: Node) -> None:  # noqa: ARG002 (hook spec)
        """Record the run's MLflow run id in its locks (a later run that takes a dead run's lock
        marks that MLflow run FAILED)."""
        if self._run_recorded or not self._locks:
            return
        self._run_recorded = True
        import mlflow  # noqa: PLC0415

        run = mlflow.active_run()
        if run is not None:
            for lock in self._locks:
                lock.update(
                    mlflow_run_id=run.info.run_id, mlflow_tracking_uri=mlflow.get_tracking_uri()
                )

    @hook_impl
    def after_dataset_saved(self, dataset_name: str) -> None:
        """A machine's manifest is saved (its parity checks passed): swap its bundle in."""
        if dataset_name in self._bundles:
            bundle_dir, machine = self._bundles[dataset_name]
            if staging_dir(bundle_dir).is_dir():
                promote_staged_bundle(bundle_dir, machine_id=machine)

    @hook_impl(tryfirst=True)
    def after_pipeline_run(self) -> None:
        """Every node succeeded: apply the held alias moves, release the locks. (If the
        interruption was swallowed by a library on its way out, the run still ends FAILED.)"""
        try:
            try:
                self._restore_signals()
            except RunInterrupted:  # Ctrl-C during this bookkeeping, before the aliases moved
                self._restore_signals()
            if self._interrupted is not None:
                drop_held_alias_moves()
                import mlflow  # noqa: PLC0415

                if mlflow.active_run() is not None:
                    mlflow.end_run("FAILED")
                raise RunInterrupted(self._interrupted)
            apply_held_alias_moves()
        finally:
            self._release()

    @hook_impl(trylast=True)
    def on_pipeline_error(self, error: Exception) -> None:
        """The run failed or was interrupted: drop its alias moves, release the locks. Last of
        the error hooks (kedro-mlflow marks the MLflow run FAILED first); an interruption that
        reached Kedro wrapped (e.g. in a ``DatasetError`` when it hit a save) is raised as
        :class:`RunInterrupted`, so the CLI prints its one line."""
        try:
            self._restore_signals()
            dropped = drop_held_alias_moves()
            if dropped:
                logger.warning(
                    "run failed (%s): %d model alias moves not applied: %s",
                    type(error).__name__,
                    len(dropped),
                    ", ".join(f"{name} v{v} -> {alias}" for name, alias, v in dropped),
                )
        finally:
            self._release()
        if self._interrupted is not None and not isinstance(error, RunInterrupted):
            raise RunInterrupted(self._interrupted) from error

    def _release(self) -> None:
        for lock in self._locks:
            lock.release()
        self._locks = []
        if self._previous_unraisablehook is not None:
            sys.unraisablehook = self._previous_unraisablehook
            self._previous_unraisablehook = None
