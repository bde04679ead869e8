"""Tiny file sources built in memory: a C-MAPSS-like cycle table and a SKAB-like set of CSVs."""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest

CYCLE_COLUMNS = ["unit", "cycle", "s_temp", "s_speed"]


def cycle_machine() -> dict:
    """A cycle-indexed, run-to-failure machine (like C-MAPSS) with two sensors."""
    return {
        "machine_id": "engine_demo",
        "category": "turbofan",
        "manufacturer": "demo",
        "model": "demo",
        "power_kw": 0,
        "rated_speed_rpm": 0,
        "voltage": 0,
        "age_years": 0,
        "sampling_interval_min": 60,
        "on_invalid": "fail",
        "source": {
            "type": "file",
            "files": {"train": "train", "test": "test", "test_final_rul": "rul"},
            "column_names": CYCLE_COLUMNS,
            "columns": {"time": "cycle", "time_kind": "cycle", "episode": "unit"},
            "cycle_minutes": 60,
            "run_to_failure": True,
            "rul_cap_hours": 8,
            "split": {"method": "files", "val_fraction": 0.25, "seed": 3},
            "families": ["regression", "classification"],
        },
        "sensors": [
            {
                "name": "s_temp",
                "kind": "temperature",
                "unit": "degR",
                "nominal": 640,
                "noise": 1,
                "min": 400,
                "max": 900,
            },
            {
                "name": "s_speed",
                "kind": "speed",
                "unit": "rpm",
                "nominal": 2388,
                "noise": 1,
                "min": 0,
                "max": 3000,
            },
        ],
        "forecast_sensors": [],
    }


def _units(units: dict[int, int], seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = [
        [unit, cycle, 640 + rng.normal(), 2388 + rng.normal()]
        for unit, n in units.items()
        for cycle in range(1, n + 1)
    ]
    frame = pd.DataFrame(rows)  # header-less, like NASA's text files
    frame[0] = frame[0].astype(int)
    frame[1] = frame[1].astype(int)
    return frame


@pytest.fixture()
def cycle_files() -> dict[str, pd.DataFrame]:
    """Partition name -> frame: 4 training units run to failure, 2 test units cut short."""
    return {
        "train": _units({1: 12, 2: 10, 3: 15, 4: 11}, seed=0),
        "test": _units({1: 6, 2: 9}, seed=1),
        "rul": pd.DataFrame({0: [20, 3]}),
        "readme": pd.DataFrame({0: ["not a table"]}),
    }


@pytest.fixture()
def engine() -> dict:
    return cycle_machine()


def skab_like_machine() -> dict:
    """One file per episode with datetimes and anomaly labels, plus an anomaly-free file."""
    machine = copy.deepcopy(cycle_machine())
    machine.update(
        machine_id="pump_demo",
        sampling_interval_min=1 / 60,
        forecast_sensors=["s_temp"],
        source={
            "type": "file",
            "files": {"data": "valve/*", "val": "free"},
            "columns": {
                "time": "datetime",
                "time_kind": "datetime",
                "sensors": {"s_temp": "Temperature", "s_speed": "Speed"},
                "labels": {"anomaly": "anomaly"},
            },
            "fill_labels": {"val": {"anomaly": 0}},
            "split": {"method": "time", "train_rows": 5},
            "families": ["anomaly", "forecasting"],
        },
    )
    return machine


def _skab_file(start: str, n: int, anomalous_from: int | None, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "datetime": pd.date_range(start, periods=n, freq="s").astype(str),
            "Temperature": 640 + rng.normal(size=n),
            "Speed": 2388 + rng.normal(size=n),
        }
    )
    if anomalous_from is not None:
        frame["anomaly"] = (np.arange(n) >= anomalous_from).astype(float)
    return frame


@pytest.fixture()
def skab_files() -> dict[str, pd.DataFrame]:
    return {
        "valve/1": _skab_file("2020-03-09 10:00:00", 12, 8, 0),
        "valve/10": _skab_file("2020-03-09 11:00:00", 11, 7, 1),
        "valve/2": _skab_file("2020-03-09 12:00:00", 10, 9, 2),
        "free": _skab_file("2020-02-08 10:00:00", 20, None, 3),
    }


@pytest.fixture()
def pump() -> dict:
    return skab_like_machine()
