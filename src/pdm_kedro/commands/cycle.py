"""``pdm-kedro cycle``: one continuous-training cycle, end to end.

For the chosen machines (default: the priority machines): score the incoming batches (the
``scoring`` pipeline), monitor them (``monitoring``: drift, data quality, realised performance,
the retraining decision), append every decision to
``data/08_reporting/retraining_decisions.jsonl``, and with ``--retrain`` run the training
pipeline of the flagged machines only (their namespaces), which registers challengers and applies
the promotion rule (champion and challenger re-scored on the same newest holdout window; the
champion never moves to a worse model; ``previous_champion`` kept). The service polls the bundles
and swaps a new champion in without a restart.

A retraining run trains on the training data plus the matured production data
(``retraining_data.use_production``: the labelled rows that arrived in ``labels/`` joined with the
scored incoming rows), holding the newest matured production episodes
(``retraining_data.holdout_days``) out as the window champion and challenger are re-scored on.

``--every SECONDS`` repeats the cycle (loop mode; ``--times N`` bounds it), or schedule it with
cron (docs/continuous_training.md).
"""

from __future__ import annotations

import json
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import click
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project

from pdm_kedro.distributed.config_loader import machine_scope
from pdm_kedro.fleet import (
    UnknownMachineError,
    load_project_parameters,
    machines_in_parameters,
    priority_machines,
    require_machine,
)
from pdm_kedro.paths import data_root, project_root

DECISIONS_FILE = "retraining_decisions.jsonl"
# what a retraining run of the cycle changes in the parameters (conf: `retraining_data`)
RETRAIN_PARAMS = {"retraining_data": {"use_production": True}}


def decisions_path() -> Path:
    """``<data root>/08_reporting/retraining_decisions.jsonl``."""
    return data_root() / "08_reporting" / DECISIONS_FILE


def append_decisions(decisions: list[dict[str, Any]], path: Path | None = None) -> Path:
    """Append one JSON line per decision."""
    path = path or decisions_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as out:
        for decision in decisions:
            out.write(json.dumps(decision, sort_keys=True) + "\n")
    return path


def run_session(
    env: str | None,
    pipeline: str | list[str],
    machines: list[str] | None,
    params: dict | None = None,
) -> None:
    """One Kedro session in this process running one pipeline or several together (one session
    start, one catalog); the MLflow run kedro-mlflow opened is ended after it (else the next
    session would reuse it and log its differing parameters into the same run)."""
    import mlflow  # noqa: PLC0415

    names = [pipeline] if isinstance(pipeline, str) else list(pipeline)
    # read only these machines' config files (and the priority ones), as `kedro run --namespaces`
    scope = machine_scope(machines) if machines else nullcontext()
    try:
        with (
            scope,
            KedroSession.create(
                project_path=project_root(), env=env, runtime_params=params or None
            ) as session,
        ):
            session.run(pipeline_names=names, namespaces=machines)
    finally:
        while mlflow.active_run() is not None:
            mlflow.end_run()


_run = run_session


def machines_with_new_files(machines: list[str]) -> list[str]:
    """The machines with an incoming file that has no scoring account yet (the others have
    nothing to score: the scoring gate would stop with ``NoNewBatchError``)."""
    root = data_root()
    out = []
    for machine in machines:
        incoming = {p.stem for p in (root / "01_raw" / machine / "incoming").glob("*.parquet")}
        done = {
            p.stem for p in (root / "08_reporting" / machine / "scoring_batches").glob("*.json")
        }
        if incoming - done:
            out.append(machine)
    return out


def run_cycle(
    env: str | None,
    machines: list[str],
    *,
    retrain: bool = False,
    manual: list[str] | None = None,
) -> dict[str, Any]:
    """One cycle (incremental: only the incoming files not scored yet are scored, only the new
    days' windows monitored); returns ``{"decisions", "retrained", "scored", "seconds"}``."""
    start = time.perf_counter()
    bootstrap_project(project_root())
    fresh = machines_with_new_files(machines)
    manual = [m for m in manual or [] if m in machines]
    # one session per group: scoring and monitoring together where there is a new file
    for chosen, pipelines, params in (
        ([m for m in fresh if m not in manual], ["scoring", "monitoring"], None),
        ([m for m in machines if m not in fresh and m not in manual], ["monitoring"], None),
        ([m for m in fresh if m in manual], ["scoring", "monitoring"], {"retraining_manual": True}),
        ([m for m in manual if m not in fresh], ["monitoring"], {"retraining_manual": True}),
    ):
        if chosen:
            _run(env, pipelines, chosen, params)
    reporting = data_root() / "08_reporting"
    decisions = [
        json.loads((reporting / m / "retraining_decision.json").read_text()) for m in machines
    ]
    monitored_s = time.perf_counter() - start
    retrained = []
    if retrain:
        for decision in decisions:
            if decision["retrain"]:
                run_session(env, decision["machine_id"], None, RETRAIN_PARAMS)
                retrained.append(decision["machine_id"])
    for decision in decisions:
        decision["retrained"] = decision["machine_id"] in retrained
    append_decisions(decisions)
    return {
        "decisions": decisions,
        "retrained": retrained,
        "scored": fresh,
        "monitor_seconds": round(monitored_s, 3),
        "seconds": round(time.perf_counter() - start, 3),
    }


@click.command(name="cycle")
@click.option("--env", "-e", default=None, help="Kedro configuration environment.")
@click.option(
    "--machines", default=None, help="Comma-separated machine ids (default: priority machines)."
)
@click.option("--retrain/--no-retrain", default=False, help="Retrain the flagged machines.")
@click.option("--manual", default="", help="Comma-separated machines to retrain by hand.")
@click.option("--every", type=float, default=None, help="Loop mode: seconds between cycles.")
@click.option("--times", type=int, default=None, help="Loop mode: stop after N cycles.")
def command(
    env: str | None,
    machines: str | None,
    retrain: bool,
    manual: str,
    every: float | None,
    times: int | None,
) -> None:
    """Score, monitor, decide (and with --retrain: retrain, promote) for the chosen machines."""
    parameters = load_project_parameters(env=env)
    known = machines_in_parameters(parameters)
    chosen = machines.split(",") if machines else priority_machines(parameters)
    try:
        for machine_id in chosen:
            require_machine(machine_id, known)
    except UnknownMachineError as err:
        raise click.UsageError(str(err)) from None
    done = 0
    while True:
        result = run_cycle(env, chosen, retrain=retrain, manual=[m for m in manual.split(",") if m])
        for decision in result["decisions"]:
            reasons = ", ".join(r["trigger"] for r in decision["reasons"]) or "none"
            action = (
                "retrained"
                if decision["retrained"]
                else ("retrain" if decision["retrain"] else "keep")
            )
            click.echo(f"{decision['machine_id']}: {action} (triggers: {reasons})")
        click.echo(
            f"cycle: {len(chosen)} machine(s) scored and monitored in "
            f"{result['monitor_seconds']:.1f} s; decisions: {decisions_path()}"
        )
        done += 1
        if every is None or (times is not None and done >= times):
            return
        time.sleep(every)
