"""``pdm-kedro fleet run``: the fleet, or any machines, as one Dask task per machine.

See docs/scale_out.md. Each machine runs ``kedro run --pipelines <machine_id>`` in its own
Kedro session on a Dask worker (a LocalCluster by default, ``--scheduler tcp://host:8786`` for
a cluster), logging to one MLflow tracking server; ``fleet_metrics`` is then built for the
machines that succeeded.
"""

from __future__ import annotations

# ruff: noqa: PLC0415  (imports inside the commands: `pdm-kedro` imports every command module)
import json
import os
import time
from pathlib import Path

import click

MAX_ROWS_SHOWN = 30


def _machine_list(spec: str, kedro_env: str | None, project_path: Path) -> list[str]:
    from pdm_kedro.fleet import load_project_parameters, machines_in_parameters, require_machine

    params = load_project_parameters(env=kedro_env, conf_source=_conf_source(project_path))
    defined = machines_in_parameters(params)
    if spec.strip() == "all":
        return sorted(defined)
    wanted = [m.strip() for m in spec.split(",") if m.strip()]
    for machine_id in wanted:
        require_machine(machine_id, defined)
    return list(dict.fromkeys(wanted))


def _conf_source(project_path: Path) -> Path:
    from kedro.framework.project import settings

    return project_path / settings.CONF_SOURCE


def _experiment_name(project_path: Path, kedro_env: str | None) -> str:
    """The experiment kedro-mlflow logs to (``tracking.experiment.name`` of mlflow.yml)."""
    from kedro.framework.project import settings

    loader = settings.CONFIG_LOADER_CLASS(
        conf_source=str(_conf_source(project_path)),
        env=kedro_env or os.environ.get("KEDRO_ENV"),
        config_patterns={"mlflow": ["mlflow*", "mlflow*/**"]},
        **settings.CONFIG_LOADER_ARGS,
    )
    return loader["mlflow"]["tracking"]["experiment"]["name"]


def _table(outcomes: dict, total: int):  # noqa: ANN202
    from rich.table import Table

    counts = {
        s: sum(o.status == s for o in outcomes.values()) for s in ("done", "running", "failed")
    }
    waiting = total - sum(counts.values())
    table = Table(
        title=f"fleet: {counts['done']} done, {counts['running']} running, "
        f"{counts['failed']} failed, {waiting} waiting (of {total})",
        title_justify="left",
    )
    for column in ("machine", "status", "attempts", "seconds", "error"):
        table.add_column(column, overflow="fold")
    shown = [o for o in outcomes.values() if o.status != "pending"][-MAX_ROWS_SHOWN:]
    colour = {"done": "green", "running": "yellow", "failed": "red"}
    for o in shown:
        seconds = f"{o.seconds:.0f}" if o.seconds is not None else ""
        table.add_row(
            o.machine_id,
            f"[{colour.get(o.status, 'white')}]{o.status}[/]",
            str(o.attempts),
            seconds,
            o.error or "",
        )
    return table


@click.group(name="fleet")
def command() -> None:
    """Run the fleet's per-machine pipelines on a Dask cluster."""


@command.command(name="run")
@click.option(
    "--machines", default="all", show_default=True, help="`all` or a comma list of machine ids."
)
@click.option("--workers", default=2, show_default=True, type=click.IntRange(min=1),
              help="Worker processes of the LocalCluster (ignored with --scheduler).")  # fmt: skip
@click.option("--scheduler", default=None, help="Address of a running Dask scheduler, e.g. tcp://host:8786.")  # fmt: skip
@click.option("-e", "--env", "kedro_env", default=None, help="Kedro configuration environment.")
@click.option("--retries", default=1, show_default=True, type=click.IntRange(min=0),
              help="Times a failed machine is run again.")  # fmt: skip
@click.option("--isolation", type=click.Choice(["session", "process"]), default="session",
              show_default=True,
              help="session: each machine in a new KedroSession inside its warm worker "
                   "process; process: a `kedro run` subprocess per machine.")  # fmt: skip
@click.option("--tracking-uri", default=None,
              help="MLflow tracking server every worker logs to; by default one is started on "
                   "127.0.0.1 over the project's sqlite store.")  # fmt: skip
def run(
    machines: str,
    workers: int,
    scheduler: str | None,
    kedro_env: str | None,
    retries: int,
    isolation: str,
    tracking_uri: str | None,
) -> None:
    """One Kedro session per machine, as Dask tasks; then fleet_metrics for those that ran."""
    # what starts the tracking server and the workers' forkserver is imported first (standard
    # library and paths only): both start before this process imports Kedro and Dask
    from rich.console import Console

    from pdm_kedro.distributed import tracking_server
    from pdm_kedro.distributed.forkserver import start_worker_forkserver
    from pdm_kedro.paths import data_root, mlflow_tracking_uri, project_root

    command_started = time.perf_counter()
    phases: dict[str, float] = {}  # seconds of the fixed costs, in summary.json

    def phase(name: str) -> None:
        phases[name] = round(time.perf_counter() - command_started - sum(phases.values()), 1)

    console = Console(stderr=True)
    project_path = project_root()
    server = None
    if tracking_uri is None:
        store = mlflow_tracking_uri()
        if not store.startswith("sqlite:///"):
            tracking_uri = store  # already a server (PDM_MLFLOW_TRACKING_URI=http://...)
        else:  # started first (its start is the longest fixed cost), waited for once the
            # project is bootstrapped and the workers are warm: its start overlaps theirs
            root = Path(store.removeprefix("sqlite:///")).parent
            console.print(f"starting an MLflow tracking server over {store} ...")
            server = tracking_server.start_tracking_server(
                root, backend_store_uri=store, wait=False
            )
            tracking_uri = server.uri
    if scheduler is None:  # the LocalCluster's workers: their libraries imported meanwhile
        start_worker_forkserver()
    try:
        from kedro.framework.startup import bootstrap_project
        from rich.live import Live

        from pdm_kedro.distributed import engine
        from pdm_kedro.fleet import UnknownMachineError

        bootstrap_project(project_path)
        try:
            machine_ids = _machine_list(machines, kedro_env, project_path)
        except UnknownMachineError as error:
            raise click.ClickException(str(error)) from None
        if not machine_ids:
            raise click.ClickException("No machines to run.")
        phase("start_and_machine_list")
        try:
            client, cluster = engine.connect(scheduler, workers)
        except engine.SchedulerUnreachableError as error:
            raise click.ClickException(str(error)) from None
    except BaseException:  # the server started above must not outlive the command
        if server is not None:
            server.stop()
        raise
    phase("cluster_start")
    try:
        log_dir = data_root() / "08_reporting" / "fleet_run"
        env = engine.forwarded_env(
            PDM_MLFLOW_TRACKING_URI=tracking_uri, PDM_DATA_ROOT=str(data_root())
        )
        if isolation == "session":
            console.print("warming the workers (one Kedro bootstrap per worker) ...")
            engine.warm_workers(client, project_path, env)
        phase("warm_up")
        if server is not None:
            tracking_server.wait_until_up(server)
        experiment = _experiment_name(project_path, kedro_env)
        # a server this command started serves this host's workers only: a new experiment's
        # artifacts go where `kedro run` on the same store puts them (mlartifacts/ beside it),
        # written by the workers, not uploaded through the server (31 files per machine)
        tracking_server.ensure_experiment(
            tracking_uri, experiment, server.artifacts_uri if server is not None else None
        )
        phase("tracking_server_wait")
        console.print(
            f"{len(machine_ids)} machines on "
            f"{scheduler or f'a LocalCluster of {workers} workers'}; MLflow at {tracking_uri} "
            f"(experiment {experiment}); logs in {log_dir}"
        )
        machine_ids, order = engine.longest_first(machine_ids, log_dir / "summary.json")
        with Live(_table({}, len(machine_ids)), console=console, refresh_per_second=2) as live:
            outcomes, wall, address = engine.run_fleet(
                machine_ids,
                project_path,
                env,
                kedro_env=kedro_env,
                retries=retries,
                log_dir=log_dir,
                on_change=lambda o: live.update(_table(o, len(machine_ids))),
                client=client,
                isolation=isolation,
            )
        phase("machines")
        result = engine.FleetRunResult(outcomes, wall, address, tracking_uri)
        result.extra["isolation"] = isolation
        result.extra["order"] = order
        if result.succeeded and isolation == "session":  # on a warm worker
            result.fleet_metrics = client.submit(
                engine.write_fleet_metrics, str(project_path), kedro_env, result.succeeded, env,
                pure=False,
            ).result()  # fmt: skip
        elif result.succeeded:
            result.fleet_metrics = engine.write_fleet_metrics(
                project_path, kedro_env, result.succeeded
            )
        phase("fleet_metrics")
    except RuntimeError as error:
        if server is not None and server.process.poll() is not None:
            raise click.ClickException(f"MLflow tracking server: {error}") from None
        raise
    finally:
        if server is not None:
            server.terminate()  # stops while the cluster closes
        client.close()
        if cluster is not None:
            cluster.close()
        if server is not None:
            server.stop()

    phase("shutdown")
    result.extra["phases_s"] = phases
    log_dir.mkdir(parents=True, exist_ok=True)
    result.extra["total_s"] = round(time.perf_counter() - command_started, 1)
    (log_dir / "summary.json").write_text(json.dumps(result.as_dict(), indent=2))
    console.print(
        f"{len(result.succeeded)} of {len(machine_ids)} machines done in {wall:.0f} s"
        + (f"; fleet metrics: {result.fleet_metrics}" if result.fleet_metrics else "")
    )
    for machine_id in result.failed:
        o = outcomes[machine_id]
        console.print(
            f"[red]FAILED[/] {machine_id} after {o.attempts} attempt(s): {o.error} "
            f"(log: {log_dir / (machine_id + '.log')})"
        )
    if result.failed:
        raise SystemExit(1)
