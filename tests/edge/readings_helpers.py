"""Readings in the edge input format, cut from the tiny simulated splits."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pandas as pd

from pdm_kedro import contract as c


def episode_rows(split: pd.DataFrame, episode: object) -> pd.DataFrame:
    """One episode of a raw split, in time order (what ``build_window_features`` sees)."""
    rows = split[split[c.EPISODE] == episode]
    return rows.sort_values(c.TIMESTAMP, kind="stable").reset_index(drop=True)


def as_readings(rows: pd.DataFrame, sensors: list[str]) -> dict[str, np.ndarray]:
    """Column arrays the runtime takes: timestamp, regime and the sensors."""
    out = {
        c.TIMESTAMP: np.array(rows[c.TIMESTAMP].to_numpy(dtype="datetime64[s]")),
        c.REGIME: np.array(rows[c.REGIME].astype(str).to_numpy()),
    }
    out |= {s: np.array(rows[s].to_numpy(dtype=np.float64)) for s in sensors}
    return out


def write_readings_csv(rows: pd.DataFrame, sensors: list[str], path: Path) -> Path:
    """A technician's readings file: ISO timestamps, regime, sensors; NaN as empty fields."""
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow([c.TIMESTAMP, c.REGIME, *sensors])
        for row in rows.itertuples(index=False):
            record = row._asdict()
            values = ["" if pd.isna(record[s]) else repr(float(record[s])) for s in sensors]
            stamp = pd.Timestamp(record[c.TIMESTAMP]).isoformat()
            writer.writerow([stamp, record[c.REGIME], *values])
    return path
