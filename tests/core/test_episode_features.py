"""Every column of ``episode_features`` against an independent pandas computation, by name."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pdm_kedro.core.window_features import (
    episode_features,
    feature_names,
    forward_fill,
    repeat_runs,
    rolling_median,
    window_labels,
    window_rows,
)

SENSORS = ["t1", "t2", "v1", "p1"]
KINDS = ["temperature", "temperature", "vibration", "pressure"]
MEDIAN = np.array([50.0, 40.0, 2.0, 5.0])
SCALE = np.array([2.0, 4.0, 0.5, 0.25])
WINDOWS = [3, 5, 8]  # rows; distinct so that swapping them shows
LABELS = ["3h", "5h", "8h"]


@pytest.fixture(scope="module")
def readings() -> np.ndarray:
    rng = np.random.default_rng(3)
    n = 30
    x = MEDIAN + rng.normal(0, 1, size=(n, 4)) * SCALE * 3 + np.arange(n)[:, None] * 0.1
    x[4, 0] = np.nan  # forward-filled from row 3
    x[0, 1] = np.nan  # no history: the fitted median
    x[10:13, 3] = x[9, 3]  # a stuck reading
    return x


@pytest.fixture(scope="module")
def table(readings) -> pd.DataFrame:
    matrix = episode_features(readings, KINDS, MEDIAN, SCALE, WINDOWS)
    names = feature_names(SENSORS, KINDS, LABELS)
    assert matrix.shape == (len(readings), len(names))
    return pd.DataFrame(matrix, columns=names)


def _filled(readings) -> pd.DataFrame:
    frame = pd.DataFrame(readings, columns=SENSORS).ffill()
    return frame.fillna(pd.Series(MEDIAN, index=SENSORS))


def test_names_in_order():
    names = feature_names(SENSORS, KINDS, LABELS)
    assert names[:4] == SENSORS
    assert names[4:8] == [f"{s}__zscore" for s in SENSORS]
    assert names[12:16] == [f"{s}__median_resid_5h" for s in SENSORS]
    assert names[-7:] == [
        "temperature__mean", "temperature__max", "temperature__spread",
        "vibration__rms", "vibration__peak_3h", "health_index", "health_index__slope_8h",
    ]  # fmt: skip
    plain = feature_names(["p"], ["pressure"], LABELS, ("mean",))
    assert plain == ["p", "p__zscore", "p__abs_diff", "p__median_resid_5h", "p__repeat_run",
                     "p__mean_3h", "p__mean_5h", "p__mean_8h", "health_index",
                     "health_index__slope_8h"]  # fmt: skip


def test_readings_zscore_diff_and_median_residual(readings, table):
    filled = _filled(readings)
    for j, s in enumerate(SENSORS):
        np.testing.assert_allclose(table[s], filled[s])
        np.testing.assert_allclose(table[f"{s}__zscore"], (filled[s] - MEDIAN[j]) / SCALE[j])
        np.testing.assert_allclose(table[f"{s}__abs_diff"], filled[s].diff().abs().fillna(0.0))
        med = filled[s].rolling(5, min_periods=1).median()
        np.testing.assert_allclose(table[f"{s}__median_resid_5h"], (filled[s] - med) / SCALE[j])


def test_rolling_statistics_per_window(readings, table):
    filled = _filled(readings)
    for window, label in zip(WINDOWS, LABELS, strict=True):
        roll = filled.rolling(window, min_periods=1)
        for s in SENSORS:
            np.testing.assert_allclose(table[f"{s}__mean_{label}"], roll.mean()[s])
            np.testing.assert_allclose(table[f"{s}__max_{label}"], roll.max()[s])
            np.testing.assert_allclose(table[f"{s}__min_{label}"], roll.min()[s])


def test_kind_aggregates(readings, table):
    filled = _filled(readings)
    temps = filled[["t1", "t2"]]
    np.testing.assert_allclose(table["temperature__mean"], temps.mean(axis=1))
    np.testing.assert_allclose(table["temperature__max"], temps.max(axis=1))
    np.testing.assert_allclose(table["temperature__spread"], temps.max(axis=1) - temps.min(axis=1))
    rms = filled["v1"].abs()  # one vibration sensor: rms = |reading|
    np.testing.assert_allclose(table["vibration__rms"], rms)
    np.testing.assert_allclose(table["vibration__peak_3h"], rms.rolling(3, min_periods=1).max())


def test_health_index_and_its_slope(readings, table):
    z = (_filled(readings) - MEDIAN) / SCALE
    health = z.rolling(8, min_periods=1).mean().abs().mean(axis=1)
    np.testing.assert_allclose(table["health_index"], health)
    # least-squares slope of the health index over the trailing 8 rows
    expected = [
        np.polyfit(np.arange(len(w)), w, 1)[0] if len(w) > 1 else 0.0
        for w in (health.iloc[max(0, i - 7) : i + 1].to_numpy() for i in range(len(health)))
    ]
    np.testing.assert_allclose(table["health_index__slope_8h"][1:], expected[1:], atol=1e-9)


def test_repeat_run_is_capped_by_the_shortest_window(readings, table):
    np.testing.assert_array_equal(table["p1__repeat_run"], repeat_runs(readings, 3)[:, 3])
    assert table["p1__repeat_run"].max() == 3  # stuck for 3 rows after row 9, cap 3
    assert table["p1__repeat_run"].iloc[10] >= 1


def test_forward_fill_with_fallback_and_no_change_in_place():
    values = np.array([[np.nan, 1.0], [2.0, np.nan], [np.nan, np.nan], [5.0, 6.0]])
    before = values.copy()
    got = forward_fill(values, np.array([-1.0, -2.0]))
    np.testing.assert_array_equal(got, [[-1.0, 1.0], [2.0, 1.0], [2.0, 1.0], [5.0, 6.0]])
    np.testing.assert_array_equal(np.isnan(values), np.isnan(before))
    ints = forward_fill(np.array([[1], [2]]), np.array([0.0]))
    assert ints.dtype == np.float64


def test_rolling_median_of_a_short_series():
    x = np.array([[1.0], [5.0], [3.0]])
    np.testing.assert_allclose(rolling_median(x, 3)[:, 0], [1.0, 3.0, 3.0])
    np.testing.assert_allclose(rolling_median(x, 5)[:, 0], [1.0, 3.0, 3.0])
    np.testing.assert_allclose(rolling_median(x, 2)[:, 0], [1.0, 3.0, 4.0])


def test_window_rows_and_labels():
    assert window_rows([3, 12, 48], 6.0) == [18, 72, 288]
    assert window_rows([3, 12], 0.5) == [2, 6]  # never below 2 rows
    assert window_rows([0.25], 4.0) == [2]
    assert window_rows([1.5], 4.0) == [6]
    assert window_labels([3, 12.5, 48.0]) == ["3h", "12.5h", "48h"]
