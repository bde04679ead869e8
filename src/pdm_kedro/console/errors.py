"""One clear line for the errors a user makes, instead of a traceback (used by ``pdm_kedro.cli``).

:func:`explain` recognises an error and says what is wrong and what would work; it returns None
for anything else (a bug keeps its traceback). :func:`smallest_rows_per_machine` works out the
smallest ``simulation.rows_per_machine`` that gives a machine the three episodes its
train/val/test split needs (the console hook adds it to that node's error).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from typing import Any

from kedro.io import DatasetError

NAMESPACE_ERROR = re.compile(r"Pipeline does not contain nodes with the following namespaces: (.*)")
PIPELINE_ERROR = re.compile(r"Failed to find the pipeline named '([^']*)'")
EPISODES_ERROR = re.compile(r"split_by_episode needs at least (\d+) episodes")
MISSING_FILE = (FileNotFoundError, NotADirectoryError, IsADirectoryError)
MIN_EPISODES = 3
# Errors of the ingestion and validation stages: a user's data file, named with column and rows.
USER_DATA_ERRORS = frozenset({"DataSourceError", "DataValidationError"})


def _names(values: Iterable[str]) -> str:
    return ", ".join(sorted(values))


def _close(name: str, options: Iterable[str]) -> str:
    match = difflib.get_close_matches(name, list(options), n=1, cutoff=0.6)
    return f" Did you mean {match[0]!r}?" if match else ""


def _registry() -> dict[str, Any]:
    from kedro.framework.project import pipelines  # noqa: PLC0415

    return dict(pipelines.items())


def _machines(registry: dict[str, Any]) -> set[str]:
    fleet = registry.get("fleet")
    return {n.namespace.split(".")[0] for n in fleet.nodes if n.namespace} if fleet else set()


def explain_namespaces(unknown: list[str], pipeline_names: list[str] | None) -> str:
    """Unknown ``--namespaces``: the valid ones of the pipelines asked for."""
    registry = _registry()
    names = pipeline_names or ["__default__"]
    valid = {
        n.namespace.split(".")[0]
        for name in names
        if name in registry
        for n in registry[name].nodes
        if n.namespace
    }
    others = sorted(_machines(registry) - valid)
    hint = "".join(_close(u, valid | set(others)) for u in unknown)
    more = (
        f" Other machines run with `kedro run --pipelines <machine_id>`: {_names(others)}."
        if others
        else ""
    )
    return (
        f"Unknown namespace {', '.join(repr(u) for u in unknown)} for pipeline "
        f"{', '.join(names)}.{hint} Its namespaces (machine ids, or <machine_id>.<family>): "
        f"{_names(valid)}.{more}"
    )


def explain_pipeline(name: str) -> str:
    """Unknown ``--pipelines``: the registered names, by kind."""
    registry = _registry()
    machines = _machines(registry)
    stages = sorted(set(registry) - machines - {"__default__", "fleet"})
    return (
        f"Unknown pipeline {name!r}.{_close(name, registry)} Registered pipelines: __default__, "
        f"fleet; stages: {', '.join(stages)}; machines: {_names(machines)}."
    )


def _root_cause(error: BaseException) -> BaseException:
    while error.__cause__ is not None:
        error = error.__cause__
    return error


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__


def explain(error: BaseException, pipeline_names: list[str] | None = None) -> str | None:
    """One line for a user error; None when ``error`` is not one (keep the traceback).

    ``pipeline_names``: the ``--pipelines`` of the command (None: ``__default__``).
    """
    text = str(error)
    notes = " ".join(getattr(error, "__notes__", []) or [])
    if match := NAMESPACE_ERROR.search(text):
        unknown = re.findall(r"'([^']*)'", match.group(1))
        return explain_namespaces(unknown, pipeline_names)
    if match := PIPELINE_ERROR.search(text):
        return explain_pipeline(match.group(1))
    if EPISODES_ERROR.search(text):
        return f"{_first_line(error)}. {notes}".strip()
    if type(error).__name__ in USER_DATA_ERRORS:  # the data breaks the contract: file, column, rows
        return f"{type(error).__name__}: {str(error).strip()}{' ' + notes if notes else ''}"
    if isinstance(error, DatasetError):
        cause = _root_cause(error)
        if (
            isinstance(cause, MISSING_FILE)
            or "No partitions found" in str(cause)
            or ("does not exist" in str(cause))
        ):
            name = text.split(": Failed while loading", 1)[0] if ": Failed" in text else "a dataset"
            where = getattr(cause, "filename", None) or _first_line(cause)
            return (
                f"Cannot load {name}: {where} is missing. Run the stage that writes it first "
                "(e.g. the same command without --pipelines / --from-nodes), or point the data "
                "root at the folder that holds it (PDM_DATA_ROOT, or the environment's data "
                "folder parameter, e.g. --params cmapss_dir=...)." + (f" {notes}" if notes else "")
            )
    return None


def smallest_rows_per_machine(
    machine: dict[str, Any], simulation: dict[str, Any], episodes: int = MIN_EPISODES
) -> int:
    """The smallest ``rows_per_machine`` that simulates ``episodes`` episodes for ``machine``.

    Episode lengths are the machine's seeded draws in order (the last episode absorbs the
    remainder), so the answer is the first ``episodes - 1`` lengths plus the shortest episode.
    """
    from pdm_kedro.fleet import parse_machine  # noqa: PLC0415
    from pdm_kedro.pipelines.data_generation.nodes import (  # noqa: PLC0415
        _episode_lengths,
        machine_rng,
    )

    spec = parse_machine(machine)
    dt_h = 1.0 / spec.rows_per_hour
    life = simulation["life_hours"]
    min_rows = max(2, round(life["min"] / dt_h))
    longest = round(life["max"] / dt_h)

    def count(n_rows: int) -> int:
        return len(
            _episode_lengths(n_rows, dt_h, life, machine_rng(simulation["seed"], spec.machine_id))
        )

    draws = _episode_lengths(
        episodes * longest + min_rows, dt_h, life, machine_rng(simulation["seed"], spec.machine_id)
    )
    candidate = sum(draws[: episodes - 1]) + min_rows
    while count(candidate) < episodes:  # guard: never report a value that does not work
        candidate += 1
    while candidate > 1 and count(candidate - 1) >= episodes:
        candidate -= 1
    return candidate
