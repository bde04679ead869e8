"""Progress of a run: machines x stages done and running, with an ETA.

On a terminal a rich progress display (the same rich console as Kedro's ``RichHandler``, so log
lines scroll above it) shows one row per machine and one for the whole run. When stdout is not a
terminal (CI, ``| tee``, a test) the live display is off and the ``pdm_kedro.console.progress``
logger writes one plain line per finished stage instead::

    motor_siemens_1la7_001: regression done (5/8 stages), run 310/651 nodes, 1m12s, ~1m40s left

``PDM_PROGRESS=off`` switches both off; ``PDM_PROGRESS=plain`` forces the plain lines.
"""

from __future__ import annotations

import logging
import os
import time
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

import rich
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

logger = logging.getLogger(__name__)

PROGRESS_ENV = "PDM_PROGRESS"
FLEET = "fleet"  # nodes without a namespace (fleet-level reports)


def fmt_seconds(seconds: float) -> str:
    """``75`` -> ``1m15s``; ``9.44`` -> ``9.4s``."""
    if seconds < 10:
        return f"{max(seconds, 0.0):.1f}s"
    seconds = round(seconds)
    minutes, secs = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


@dataclass
class MachineState:
    """Counts of one machine: nodes per stage, nodes done per stage, the stage running."""

    nodes: Counter = field(default_factory=Counter)
    done: Counter = field(default_factory=Counter)
    running: str = ""

    @property
    def stages_done(self) -> int:
        return sum(1 for stage, n in self.nodes.items() if self.done[stage] >= n)


class RunProgress:
    """Counts nodes per ``(machine, stage)`` and shows how far the run is."""

    def __init__(self, groups: Iterable[tuple[str, str]], mode: str | None = None) -> None:
        """``groups``: the ``(machine, stage)`` of every node the run will execute."""
        self.machines: dict[str, MachineState] = defaultdict(MachineState)
        for machine, stage in groups:
            self.machines[machine].nodes[stage] += 1
        self.total = sum(sum(s.nodes.values()) for s in self.machines.values())
        self.completed = 0
        self.started = time.monotonic()
        self.mode = mode or choose_mode()
        self._progress: Progress | None = None
        self._tasks: dict[str, int] = {}
        self._overall: int | None = None

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self) -> None:
        """Open the live display (terminal mode only)."""
        if self.mode != "rich" or not self.total:
            return
        self._progress = Progress(
            TextColumn("{task.description}", style="bold"),
            BarColumn(bar_width=24),
            MofNCompleteColumn(),
            TextColumn("{task.fields[stages]}"),
            TextColumn("{task.fields[running]}", style="cyan"),
            TimeRemainingColumn(),
            console=rich.get_console(),
            transient=False,
        )
        for machine, state in self.machines.items():
            self._tasks[machine] = self._progress.add_task(
                machine, total=sum(state.nodes.values()), stages=self._stages(state), running=""
            )
        self._overall = self._progress.add_task(
            f"all {len(self.machines)} machines", total=self.total, stages="nodes", running=""
        )
        self._progress.start()

    def stop(self) -> None:
        """Close the live display (also on errors)."""
        if self._progress is not None:
            self._progress.stop()
            self._progress = None

    # -- events ----------------------------------------------------------------------------------
    def node_started(self, machine: str, stage: str) -> None:
        """A node of ``machine``'s ``stage`` starts."""
        state = self.machines[machine]
        state.running = stage
        if self._progress is not None and machine in self._tasks:
            self._progress.update(self._tasks[machine], running=stage)

    def node_done(self, machine: str, stage: str) -> None:
        """A node of ``machine``'s ``stage`` finished."""
        state = self.machines[machine]
        state.done[stage] += 1
        self.completed += 1
        stage_finished = state.done[stage] == state.nodes[stage]
        if self._progress is not None:
            if machine in self._tasks:
                self._progress.update(
                    self._tasks[machine],
                    advance=1,
                    stages=self._stages(state),
                    running="done" if state.stages_done == len(state.nodes) else state.running,
                )
            self._progress.update(self._overall, advance=1)
        elif self.mode == "plain" and stage_finished:
            logger.info(
                "%s: %s done (%d/%d stages), run %d/%d nodes, %s",
                machine,
                stage,
                state.stages_done,
                len(state.nodes),
                self.completed,
                self.total,
                self.timing(),
            )

    # -- figures ---------------------------------------------------------------------------------
    def eta_seconds(self) -> float | None:
        """Seconds left at the mean pace so far (None before the first node)."""
        if not self.completed:
            return None
        elapsed = time.monotonic() - self.started
        return elapsed / self.completed * (self.total - self.completed)

    def timing(self) -> str:
        """``1m12s, ~1m40s left``."""
        elapsed = fmt_seconds(time.monotonic() - self.started)
        eta = self.eta_seconds()
        if eta is None or self.completed == self.total:
            return elapsed
        return f"{elapsed}, ~{fmt_seconds(eta)} left"

    @staticmethod
    def _stages(state: MachineState) -> str:
        return f"{state.stages_done}/{len(state.nodes)} stages"


def choose_mode() -> str:
    """``rich`` on a terminal, ``plain`` otherwise; ``PDM_PROGRESS`` (off|plain|rich) overrides."""
    wanted = os.environ.get(PROGRESS_ENV, "").strip().lower()
    if wanted in {"off", "plain", "rich"}:
        return wanted
    return "rich" if rich.get_console().is_terminal else "plain"
