"""Snapshot tables (``time_kind: none``): no window features, no constant column, categories."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pdm_kedro import contract as c
from pdm_kedro.contract import feature_columns
from pdm_kedro.core.window_features import feature_names, window_labels
from pdm_kedro.pipelines.feature_engineering.nodes import (
    build_window_features,
    fit_sensor_baselines,
)

FEATURES = {
    "windows_hours": [3, 12],
    "statistics": ["mean", "std"],
    "robust_scale_floor": 1e-6,
    "degradation": {"groups": []},
}


def _machine(regime: bool, scale_per_condition: bool) -> dict:
    columns = {
        "time_kind": "none",
        "categorical": ["line"],
        "labels": {"failure_within_horizon": "failed"},
    }
    if regime:
        columns["regime"] = "load"
    source = {
        "type": "file",
        "files": {"data": "table"},
        "columns": columns,
        "split": {"method": "random", "stratify": "failure_within_horizon"},
    }
    if scale_per_condition:
        source["operating_conditions"] = {"normalise_sensors": True}
    return {
        "machine_id": "parts",
        "category": "press",
        "manufacturer": "t",
        "model": "t",
        "rated_speed_rpm": 0,
        "sampling_interval_min": 60,
        "source": source,
        "sensors": [
            {"name": "force", "kind": "pressure", "unit": "kN", "min": 0, "max": 100},
            {"name": "temp", "kind": "temperature", "unit": "degC", "min": 0, "max": 200},
            {"name": "stuck", "kind": "speed", "unit": "rpm", "min": 0, "max": 5000},
        ],
    }


def _rows(n: int, seed: int, lines: list[str]) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    load = rng.choice(["low", "high"], size=n)
    return pd.DataFrame(
        {
            c.TIMESTAMP: pd.date_range("2024-01-01", periods=n, freq="h"),
            c.EPISODE: np.arange(n, dtype=np.int64),
            c.REGIME: load,
            "force": 40 + 10 * (load == "high") + rng.normal(0, 1, n),
            "temp": 60 + rng.normal(0, 2, n),
            "stuck": 1500.0,  # a sensor that never moves in this table
            "category__line": rng.choice(lines, size=n),
            c.FAILURE_WITHIN_HORIZON: (rng.random(n) < 0.2).astype(np.int8),
        }
    )


@pytest.mark.parametrize("scale_per_condition", [False, True])
def test_snapshot_rows_get_no_window_and_no_constant_feature(scale_per_condition):
    machine = _machine(regime=True, scale_per_condition=scale_per_condition)
    train, test = _rows(300, 0, ["A", "B"]), _rows(80, 1, ["A", "B", "C"])
    baselines = fit_sensor_baselines(train, machine, FEATURES)
    features = build_window_features(train, baselines, machine)
    names = feature_columns(features)
    assert len(features) == len(train)
    constant = [n for n in names if features[n].nunique(dropna=True) < 2]
    assert constant == []
    assert "stuck" not in names and "stuck" in baselines["snapshot"]["dropped_constant"]
    windowed = set(
        feature_names(
            ["force", "temp"],
            ["pressure", "temperature"],
            window_labels(FEATURES["windows_hours"]),
            ["mean", "std"],
        )
    )
    assert not (set(names) & (windowed - {"force", "temp", "force__zscore", "temp__zscore"}))
    assert "regime_code" not in names
    assert {"line__is_A", "line__is_B", "regime__is_low", "regime__is_high"} <= set(names)
    # z-scores only where they are not a copy of the reading: per operating condition
    assert ("force__zscore" in names) is scale_per_condition
    # a level unseen in train sets none of the level columns; the columns stay train's
    scored = build_window_features(test, baselines, machine)
    assert feature_columns(scored) == names
    unseen = scored[test["category__line"].to_numpy() == "C"]
    assert len(unseen) and (unseen[["line__is_A", "line__is_B"]] == 0).all().all()
    np.testing.assert_array_equal(scored["force"], test["force"])


def test_a_one_level_category_is_constant_and_left_out():
    machine = _machine(regime=False, scale_per_condition=False)
    train = _rows(100, 2, ["A"])
    baselines = fit_sensor_baselines(train, machine, FEATURES)
    names = feature_columns(build_window_features(train, baselines, machine))
    assert "line__is_A" in baselines["snapshot"]["dropped_constant"]
    assert names == ["force", "temp"]


def test_missing_categorical_column_is_named():
    machine = _machine(regime=False, scale_per_condition=False)
    train = _rows(50, 3, ["A", "B"]).drop(columns=["category__line"])
    with pytest.raises(ValueError, match="category__line"):
        fit_sensor_baselines(train, machine, FEATURES)
