"""The console hook: session environment, run log, progress and the end-of-run summary.

Registered in ``settings.HOOKS``. Per session it records the ``--env`` (which picks the data root
and MLflow store, see :mod:`pdm_kedro.paths`) and opens the run log file; per run it counts the
nodes of every ``<machine>.<stage>`` (progress), times every ``<machine>.<family>``, and at the end
prints the summary table and saves it as the ``run_summary`` catalog dataset
(``<data root>/08_reporting/run_summary.md``).
"""

from __future__ import annotations

import logging
import re
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import rich
from kedro.framework.hooks import hook_impl
from kedro.pipeline import Pipeline
from kedro.pipeline.node import Node
from rich.console import Console

from pdm_kedro import paths
from pdm_kedro.console import summary
from pdm_kedro.console.errors import EPISODES_ERROR, smallest_rows_per_machine
from pdm_kedro.console.progress import FLEET, RunProgress, fmt_seconds
from pdm_kedro.console.runlog import (
    RunLog,
    adopt_library_loggers,
    current_scope,
    install_scope_prefix,
    scope_of,
)
from pdm_kedro.distributed.config_loader import scoped_machines

logger = logging.getLogger(__name__)

SUMMARY_DATASET = "run_summary"
SUMMARY_WIDTH = 160  # columns of the summary table when stdout is not a terminal
METRICS = re.compile(r"^(?P<machine>[^.]+)\.(?P<family>[^.]+)\.metrics$")


def stage_map() -> dict[str, str]:
    """``{node name without its machine prefix: stage}`` from the stages' templates
    (:func:`pdm_kedro.pipeline_registry.discover_templates`, what the registry builds from).

    A machine's stage pipeline is its stage template under the machine's namespace, so the
    template's node names are the names without the machine prefix. The templates are read, not
    the registered stage pipelines: building those means building the priority machines'
    pipelines (about 0.25 s in every fleet task's session, 2.7 s in a fresh process), for a
    progress display. Fleet-level nodes (not namespaced) are not in a template:
    :func:`node_group` takes their stage from their function's module.
    """
    from pdm_kedro.pipeline_registry import discover_templates  # noqa: PLC0415 (at run start, not import)

    out: dict[str, str] = {}
    try:
        for stage, template in discover_templates().items():
            for node in template.nodes:
                out.setdefault(node.name, stage)
    except Exception:  # noqa: BLE001  (progress must never break a run: fall back to namespaces)
        logger.debug("no stage templates: progress groups nodes by namespace", exc_info=True)
    return out


def node_group(node: Node, stages: dict[str, str]) -> tuple[str, str]:
    """``(machine, stage)`` of a node: fleet-level nodes are machine ``fleet``."""
    if not node.namespace:
        if node.name in stages:
            return FLEET, stages[node.name]
        parts = getattr(node.func, "__module__", "").split(".")  # pdm_kedro.pipelines.<stage>.nodes
        in_stage = len(parts) > 2 and parts[:2] == ["pdm_kedro", "pipelines"]  # noqa: PLR2004
        return FLEET, parts[2] if in_stage else "reporting"
    parts = node.namespace.split(".")
    suffix = node.name.split(".", 1)[-1]
    return parts[0], stages.get(suffix, parts[1] if len(parts) > 1 else "other")


class ConsoleHook:
    """Progress while a run goes, the run log file, and the summary at its end."""

    def __init__(self) -> None:
        self.run_log = RunLog()
        self.progress: RunProgress | None = None
        self._stages: dict[str, str] = {}
        self._started: dict[str, float] = {}
        self._seconds: dict[tuple[str, str], float] = defaultdict(float)
        self._run_started = 0.0
        self._env: str | None = None

    @hook_impl(tryfirst=True)
    def after_context_created(self, context: Any) -> None:
        """Record the environment (before the catalog and kedro-mlflow read the paths)."""
        self._env = context.env
        paths.use_session_env(context.env)
        install_scope_prefix()
        from kedro.framework.project import LOGGING  # noqa: PLC0415

        adopt_library_loggers(dict(LOGGING.data))
        scope = scoped_machines()  # a fleet task: one machine's session beside others
        self.run_log.open(
            paths.data_root(), next(iter(scope)) if scope and len(scope) == 1 else None
        )
        uri = paths.mlflow_tracking_uri()
        if uri.startswith("sqlite:///"):  # e.g. data/<env>/mlflow.db: sqlite needs its folder
            Path(uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)

    @hook_impl
    def before_pipeline_run(self, run_params: dict[str, Any], pipeline: Pipeline) -> None:
        """Start the run log file (the run guard, tried first, admitted the run), count the
        nodes of every ``<machine>.<stage>`` and start the display."""
        self.run_log.start_file()
        self._stages = stage_map()
        self._seconds = defaultdict(float)
        self._run_started = time.monotonic()
        self.progress = RunProgress(node_group(n, self._stages) for n in pipeline.nodes)
        logger.info(
            "running %d nodes of %d machines (env %s); full log: %s",
            self.progress.total,
            len([m for m in self.progress.machines if m != FLEET]),
            run_params.get("env") or "local",
            self.run_log.path,
        )
        self.progress.start()

    @hook_impl
    def before_node_run(self, node: Node) -> None:
        """Mark the node's stage running; its log lines get its machine/family scope."""
        current_scope.set(scope_of(node.namespace))
        self._started[node.name] = time.monotonic()
        if self.progress is not None:
            self.progress.node_started(*node_group(node, self._stages))

    @hook_impl
    def after_node_run(self, node: Node) -> None:
        """Advance the display; add the node's time to its ``(machine, family)``."""
        current_scope.set(None)
        started = self._started.pop(node.name, None)
        if started is not None and node.namespace:
            parts = node.namespace.split(".")
            self._seconds[(parts[0], parts[1] if len(parts) > 1 else "")] += (
                time.monotonic() - started
            )
        if self.progress is not None:
            self.progress.node_done(*node_group(node, self._stages))

    @hook_impl
    def on_node_error(self, error: Exception, node: Node, catalog: Any) -> None:
        """Add what would work to a node error a user's parameters cause."""
        if EPISODES_ERROR.search(str(error)) and node.namespace:
            machine = node.namespace.split(".")[0]
            try:
                simulation = catalog.load("params:simulation")
                smallest = smallest_rows_per_machine(
                    catalog.load(f"params:{machine}.machine"), simulation
                )
            except Exception:  # noqa: BLE001 (a hint must not hide the real error)
                logger.debug("no rows_per_machine hint", exc_info=True)
                return
            error.add_note(
                f"Machine {machine}: simulation.rows_per_machine={simulation['rows_per_machine']} "
                f"simulates too few episodes; the smallest value that works for it is {smallest} "
                f"(e.g. --params simulation.rows_per_machine={smallest})."
            )

    @hook_impl
    def on_pipeline_error(self) -> None:
        """Close the display so the error is readable."""
        current_scope.set(None)
        if self.progress is not None:
            self.progress.stop()

    @hook_impl
    def after_pipeline_run(
        self, run_params: dict[str, Any], pipeline: Pipeline, catalog: Any
    ) -> None:
        """Print the summary table and save ``run_summary`` through the catalog."""
        if self.progress is not None:
            self.progress.stop()
        try:
            self._summarise(run_params, pipeline, catalog)
        finally:
            self.run_log.close()

    def _summarise(self, run_params: dict[str, Any], pipeline: Pipeline, catalog: Any) -> None:
        reports = {}
        for name in sorted(pipeline.all_outputs()):
            match = METRICS.match(name)
            if match:
                reports[(match["machine"], match["family"])] = catalog.load(name)
        parameters = catalog.load("parameters") if "parameters" in catalog else {}
        rows = summary.build_rows(reports, parameters, self._seconds)
        wall = time.monotonic() - self._run_started
        machines = sorted(
            {m for m, _ in reports} | {m for m in self.progress.machines if m != FLEET}
        )
        title = f"Run summary ({len(machines)} machines, {fmt_seconds(wall)})"
        facts = [
            ("environment", run_params.get("env") or "local"),
            ("pipelines", ", ".join(run_params.get("pipeline_names") or ["__default__"])),
            ("namespaces", ", ".join(run_params.get("namespaces") or []) or "all"),
            ("machines", ", ".join(machines)),
            ("wall time", fmt_seconds(wall)),
        ]
        where = self._where(machines)
        console = rich.get_console()
        if not console.is_terminal:  # a log file or CI: no terminal width to fit, keep rows whole
            console = Console(width=max(console.width, SUMMARY_WIDTH), highlight=False)
        console.print(summary.rich_table(rows, title))
        for label, value in where:
            console.print(f"[bold]{label}[/]: {value}", highlight=False, soft_wrap=True)
        text = summary.markdown(rows, title, facts, where)
        if SUMMARY_DATASET in catalog:
            catalog.save(SUMMARY_DATASET, text)

    def _where(self, machines: list[str]) -> list[tuple[str, str]]:
        import mlflow  # noqa: PLC0415 (kedro-mlflow has set the run's tracking URI)

        root = paths.data_root()
        first = machines[0] if machines else "<machine>"
        uri = mlflow.get_tracking_uri()
        return [
            (
                "reports",
                f"{root / '08_reporting'}/<machine>/ (e.g. {root / '08_reporting' / first})",
            ),
            ("model cards", f"{root / '08_reporting'}/<machine>/model_card.md"),
            ("edge bundles", f"{root / '06_models'}/<machine>/edge/"),
            ("MLflow UI", f"mlflow ui --backend-store-uri {uri}"),
            ("run summary", str(root / "08_reporting" / "run_summary.md")),
            ("full log", str(self.run_log.path or Path(root / "logs" / "kedro_run.log"))),
        ]
