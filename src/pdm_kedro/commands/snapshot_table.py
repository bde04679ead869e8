"""A snapshot table to try the snapshot path with: simulated rows with their time order removed.

    python -m pdm_kedro.commands.snapshot_table --env snapshot [--data-root DIR]

Reads the environment's ``snapshot_table`` parameters (which simulated machine, how many rows,
the seed, the machine that reads the table) and its ``simulation`` / ``labels`` groups, simulates
the machine's run-to-failure history, draws ``rows`` readings at random (seeded) and writes them
as a table of independent rows, as a user's "one row per part or process run" file would look:
no timestamp, no episode, no RUL; the sensors, the operating regime as a text column
(``load_class``), a production ``line`` that carries no signal (A/B/C, drawn at random) and the
0/1 label ``machine_failure`` (the simulator's failure within the horizon).

Written to ``<data root>/00_source/<machine>/<file>.csv`` (the data root of ``kedro run -e
<env>``: ``$PDM_DATA_ROOT``, else ``data/<env>``), never into the repository.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import click
import numpy as np
import pandas as pd

from pdm_kedro import contract as c
from pdm_kedro.core.simulator import simulate_machine_history
from pdm_kedro.fleet import load_project_parameters, machines_in_parameters, require_machine
from pdm_kedro.paths import DATA_ROOT_ENV, project_root

logger = logging.getLogger(__name__)

SETTINGS_KEY = "snapshot_table"
LABEL_COLUMN = "machine_failure"
REGIME_COLUMN = "load_class"
LINE_COLUMN = "line"


def snapshot_rows(
    history: pd.DataFrame, sensors: list[str], settings: dict[str, Any]
) -> pd.DataFrame:
    """``settings["rows"]`` rows of a simulated history drawn without replacement (seeded), with
    time, episode and every label but the failure label removed, and a noise ``line`` column."""
    rng = np.random.default_rng(int(settings["seed"]))
    n = min(int(settings["rows"]), len(history))
    picked = history.iloc[np.sort(rng.choice(len(history), size=n, replace=False))]
    picked = picked.iloc[rng.permutation(n)].reset_index(drop=True)  # no order left
    table = picked[sensors].copy()
    table.insert(0, REGIME_COLUMN, picked[c.REGIME].astype(str).to_numpy())
    lines = np.asarray(settings["lines"], dtype=object)
    table.insert(1, LINE_COLUMN, lines[rng.integers(0, len(lines), size=n)])
    table[LABEL_COLUMN] = picked[c.FAILURE_WITHIN_HORIZON].astype(np.int8).to_numpy()
    return table


def build_snapshot_table(parameters: dict[str, Any]) -> tuple[str, str, pd.DataFrame]:
    """``(machine_id, file_name, table)`` from an environment's parameters."""
    settings = parameters[SETTINGS_KEY]
    machines = machines_in_parameters(parameters)
    require_machine(settings["from_machine"], machines)
    source = machines[settings["from_machine"]]
    simulation = {**parameters["simulation"], "rows_per_machine": int(settings["simulated_rows"])}
    history = simulate_machine_history(source, simulation, parameters["labels"])
    sensors = [s["name"] for s in source["sensors"]]
    return settings["machine"], settings["file"], snapshot_rows(history, sensors, settings)


def default_data_root(env: str) -> Path:
    """The data root of ``kedro run -e env``: ``$PDM_DATA_ROOT``, else ``data/<env>``."""
    override = os.environ.get(DATA_ROOT_ENV)
    return Path(override).resolve() if override else project_root() / "data" / env


@click.command()
@click.option("--env", "-e", required=True, help="configuration environment (e.g. snapshot)")
@click.option("--data-root", type=click.Path(path_type=Path), default=None)
def main(env: str, data_root: Path | None) -> None:
    """Write the environment's snapshot table into its data root."""
    parameters = load_project_parameters(env=env)
    if SETTINGS_KEY not in parameters:
        raise click.ClickException(
            f"environment {env!r} has no {SETTINGS_KEY!r} parameters (see conf/snapshot)"
        )
    machine_id, file_name, table = build_snapshot_table(parameters)
    folder = (data_root or default_data_root(env)) / "00_source" / machine_id
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{file_name}.csv"
    table.to_csv(path, index=False)
    click.echo(
        f"{path}: {len(table)} rows, {int(table[LABEL_COLUMN].sum())} with {LABEL_COLUMN} = 1"
    )


if __name__ == "__main__":
    main()
