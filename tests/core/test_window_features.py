"""The numpy window statistics equal their pandas definitions and never look ahead."""

import numpy as np
import pandas as pd
import pytest

from pdm_kedro.core.window_features import (
    episode_features,
    feature_names,
    forward_fill,
    repeat_runs,
    rolling_median,
    rolling_stats,
)


@pytest.fixture()
def series() -> np.ndarray:
    rng = np.random.default_rng(0)
    return 50 + np.cumsum(rng.normal(size=(60, 3)), axis=0)


@pytest.mark.parametrize("window", [1, 2, 5, 8, 13, 16, 59, 64, 100])
def test_rolling_stats_match_pandas(series, window):
    stats = rolling_stats(series, window)
    rolling = pd.DataFrame(series).rolling(window, min_periods=1)
    np.testing.assert_allclose(stats["mean"], rolling.mean(), rtol=1e-10)
    np.testing.assert_allclose(stats["std"], rolling.std(ddof=0), atol=1e-6)
    # exact: the doubling spans compare readings, they never add them
    np.testing.assert_array_equal(stats["min"], rolling.min())
    np.testing.assert_array_equal(stats["max"], rolling.max())


def test_slope_is_the_least_squares_slope(series):
    window = 7
    slope = rolling_stats(series, window, ("slope",))["slope"]
    for t in (0, 3, 20, 59):
        lo = max(0, t - window + 1)
        if t - lo < 1:
            assert np.all(slope[t] == 0)
            continue
        expected = np.polyfit(np.arange(lo, t + 1), series[lo : t + 1, 0], 1)[0]
        assert slope[t, 0] == pytest.approx(expected, rel=1e-8)


def test_forward_fill_uses_only_earlier_readings():
    x = np.array([[np.nan, 1.0], [2.0, np.nan], [np.nan, np.nan], [4.0, 5.0]])
    filled = forward_fill(x, fallback=np.array([9.0, 8.0]))
    np.testing.assert_array_equal(filled, [[9, 1], [2, 1], [2, 1], [4, 5]])


def test_features_of_a_row_ignore_every_later_row(series):
    kinds = ["temperature", "vibration", "current"]
    args = dict(kinds=kinds, median=series.mean(0), scale=series.std(0), windows_rows=[3, 8])
    full = episode_features(series, **args)
    changed = series.copy()
    changed[40:] += 1000.0  # rewrite the future
    partial = episode_features(changed, **args)
    np.testing.assert_array_equal(full[:40], partial[:40])
    assert not np.allclose(full[40:], partial[40:])
    names = feature_names(["a", "b", "c"], kinds, ["3h", "8h"])
    assert full.shape == (60, len(names)) and len(set(names)) == len(names)


def test_rolling_median_matches_pandas(series):
    for window in (1, 4, 9):
        expected = pd.DataFrame(series).rolling(window, min_periods=1).median()
        np.testing.assert_allclose(rolling_median(series, window), expected)


def test_repeat_runs_flag_stuck_readings_but_not_gaps():
    x = np.array([[1.0], [2.0], [2.0], [2.0], [2.0], [2.0], [np.nan], [np.nan], [3.0], [3.5]])
    np.testing.assert_array_equal(repeat_runs(x, 3)[:, 0], [0, 0, 1, 2, 3, 3, 0, 0, 0, 0])
