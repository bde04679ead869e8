"""``pdm-kedro sample-readings``: a readings CSV per machine to try the edge CLI (and the service) with.

For every machine with an edge bundle under the data root (after ``kedro run``: the priority
machines) it writes ``<out>/<machine_id>_last48h.csv``: the last 48 hours (at least the bundle's
``min_history_rows``) of a test episode, in the bundle's column order (``timestamp``, ``regime``,
one column per sensor; missing readings as empty fields), exactly as a device would send them.
The window ends at the episode's last reading before the failure, so the answers are the
interesting ones. The file is checked with the edge runtime's own reader before it is written.
Generated from the run's data, never committed.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import click
import pandas as pd

from pdm_kedro import contract as c
from pdm_kedro import paths
from pdm_kedro.edge.bundle import MANIFEST_FILE, check_manifest
from pdm_kedro.edge.errors import EdgeError
from pdm_kedro.edge.readings import check_readings, read_readings_csv

HOURS = 48.0


def window_rows(manifest: dict, hours: float = HOURS) -> int:
    """Rows of ``hours`` of readings, never fewer than the bundle needs."""
    per_hour = 60.0 / float(manifest["sampling_interval_min"])
    return max(math.ceil(hours * per_hour), int(manifest["inputs"]["min_history_rows"]))


def sample_window(raw_test: pd.DataFrame, manifest: dict, hours: float = HOURS) -> pd.DataFrame:
    """The last ``hours`` of the latest test episode whose window the edge runtime accepts."""
    need = window_rows(manifest, hours)
    sensors = [s["name"] for s in manifest["sensors"]]
    order = raw_test.groupby(c.EPISODE, sort=False)[c.TIMESTAMP].min().sort_values().index
    reasons = []
    for episode in reversed(list(order)):
        rows = raw_test[raw_test[c.EPISODE] == episode].sort_values(c.TIMESTAMP, kind="stable")
        if len(rows) < need:
            reasons.append(f"episode {episode}: {len(rows)} rows")
            continue
        start = len(rows) - need
        while start > 0 and rows[sensors].iloc[start].isna().any():  # first row seeds ffill
            start -= 1
        window = rows.iloc[start:].reset_index(drop=True)
        try:
            check_readings(_as_columns(window, sensors), manifest, min_rows=need)
        except EdgeError as err:
            reasons.append(f"episode {episode}: {err}")
            continue
        return window
    raise click.ClickException(
        f"{manifest['machine_id']}: no test episode has {need} readings the edge accepts "
        f"({'; '.join(reasons) or 'no test episodes'})."
    )


def _as_columns(window: pd.DataFrame, sensors: list[str]) -> dict:
    out = {
        c.TIMESTAMP: window[c.TIMESTAMP].astype(str).to_numpy(),
        c.REGIME: window[c.REGIME].astype(str).to_numpy(),
    }
    return out | {s: window[s].to_numpy(dtype=float) for s in sensors}


def write_readings(window: pd.DataFrame, manifest: dict, path: Path) -> Path:
    """The window as the edge CSV: ISO timestamps, regime, sensors; NaN as empty fields."""
    spec = manifest["inputs"]
    sensors = [s["name"] for s in manifest["sensors"]]
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow([spec["timestamp_column"], spec["regime_column"], *sensors])
        for stamp, regime, *values in window[[c.TIMESTAMP, c.REGIME, *sensors]].itertuples(
            index=False
        ):
            writer.writerow(
                [
                    pd.Timestamp(stamp).isoformat(),
                    regime,
                    *("" if pd.isna(v) else repr(float(v)) for v in values),
                ]
            )
    check_readings(read_readings_csv(path), manifest, min_rows=int(spec["min_history_rows"]))
    return path


def bundles(root: Path, machines: tuple[str, ...]) -> dict[str, Path]:
    """``{machine_id: bundle folder}`` under ``<root>/06_models`` (only ``machines`` if given)."""
    found = {
        p.parent.parent.name: p.parent
        for p in sorted(root.glob(f"06_models/*/edge/{MANIFEST_FILE}"))
    }
    unknown = sorted(set(machines) - set(found))
    if unknown:
        raise click.ClickException(
            f"No edge bundle for {', '.join(unknown)} under {root / '06_models'}; bundles exist "
            f"for: {', '.join(found) or 'none (run `kedro run` first)'}."
        )
    if not found:
        raise click.ClickException(
            f"No edge bundle under {root / '06_models'}: run `kedro run` (or point --data-root "
            "at the data root of a run)."
        )
    return {m: found[m] for m in (machines or tuple(found))}


@click.command(name="sample-readings")
@click.option(
    "--data-root",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="data root of a run (default: the project's, or PDM_DATA_ROOT)",
)
@click.option(
    "--out", type=click.Path(path_type=Path, file_okay=False), required=True, help="folder to write"
)
@click.option("--machine", "machines", multiple=True, help="only this machine (repeatable)")
@click.option("--hours", type=float, default=HOURS, show_default=True, help="hours of readings")
def command(data_root: Path | None, out: Path, machines: tuple[str, ...], hours: float) -> None:
    """Write <machine>_last48h.csv per machine: the readings the edge CLI and the service take."""
    root = (data_root or paths.data_root()).resolve()
    out.mkdir(parents=True, exist_ok=True)
    for machine, folder in bundles(root, machines).items():
        manifest = check_manifest(
            json.loads((folder / MANIFEST_FILE).read_text(encoding="utf-8")), folder
        )
        raw = root / "01_raw" / machine / "test.parquet"
        if not raw.is_file():
            raise click.ClickException(f"{machine}: no test split at {raw}.")
        window = sample_window(pd.read_parquet(raw), manifest, hours)
        suffix = f"last{hours:g}h"
        path = write_readings(window, manifest, out / f"{machine}_{suffix}.csv")
        click.echo(
            f"{path}  ({len(window)} readings)  try: python -m pdm_kedro.edge predict "
            f"--bundle {folder} --readings {path}"
        )
