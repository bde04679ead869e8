"""The degradation features against independent pandas computations; causal; bounded history."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pdm_kedro.core.degradation_features import (
    degradation_block,
    degradation_feature_names,
    degradation_features,
    degradation_settings,
    history_rows,
    needs_episode_start,
    settings_feature_names,
)

SENSORS = ["t1", "v1", "p1"]
MEDIAN = np.array([50.0, 2.0, 5.0])
SCALE = np.array([2.0, 0.5, 0.25])
LONG, BASE, RPH = 12, 4, 2.0


@pytest.fixture(scope="module")
def z() -> np.ndarray:
    rng = np.random.default_rng(5)
    return rng.normal(0, 1, size=(40, 3)) + np.arange(40)[:, None] * 0.05


def _table(z: np.ndarray, groups) -> pd.DataFrame:
    names = degradation_feature_names(SENSORS, groups, "6h", "2h")
    matrix = degradation_features(z, RPH, groups, LONG, BASE)
    assert matrix.shape == (len(z), len(names))
    return pd.DataFrame(matrix, columns=names)


def _slope(series: pd.Series, window: int) -> pd.Series:
    def fit(values: np.ndarray) -> float:
        t = np.arange(len(values), dtype=float)
        return 0.0 if len(values) < 2 else float(np.polyfit(t, values, 1)[0])

    return series.rolling(window, min_periods=1).apply(fit, raw=True)


def test_long_group_equals_pandas(z):
    table = _table(z, ["long"])
    frame = pd.DataFrame(z, columns=SENSORS)
    for s in SENSORS:
        want = frame[s].rolling(LONG, min_periods=1).mean()
        np.testing.assert_allclose(table[f"{s}__zmean_6h"], want, atol=1e-9)
        np.testing.assert_allclose(table[f"{s}__zslope_6h"], _slope(frame[s], LONG), atol=1e-9)
    health = frame.abs().mean(axis=1)
    np.testing.assert_allclose(
        table["health_index__abs_z_slope_6h"], _slope(health, LONG), atol=1e-9
    )


def test_episode_group_equals_pandas(z):
    table = _table(z, ["episode"])
    np.testing.assert_allclose(table["hours_since_repair"], np.arange(len(z)) / RPH)
    frame = pd.DataFrame(z, columns=SENSORS)
    baseline = frame.expanding().mean().iloc[:BASE].reindex(frame.index).ffill()
    shift = frame - baseline
    for s in SENSORS:
        np.testing.assert_allclose(table[f"{s}__shift_2h"], shift[s], atol=1e-12)
    smooth = shift.abs().mean(axis=1).rolling(BASE, min_periods=1).mean()
    np.testing.assert_allclose(table["health_shift_2h"], smooth, atol=1e-12)
    np.testing.assert_allclose(table["health_shift__slope_6h"], _slope(smooth, LONG), atol=1e-9)


def test_causal_no_row_sees_a_later_one(z):
    full = degradation_features(z, RPH, ["long", "episode"], LONG, BASE)
    for cut in (1, 3, 17, 39):
        head = degradation_features(z[:cut], RPH, ["long", "episode"], LONG, BASE)
        np.testing.assert_array_equal(head, full[:cut])


def test_long_group_last_row_from_its_bounded_tail(z):
    """The edge sees only the last ``history_rows`` readings: the last row must not change."""
    settings = degradation_settings({"groups": ["long"], "long_window_hours": 6}, RPH)
    assert history_rows(settings) == LONG
    raw = MEDIAN + z * SCALE
    full = degradation_block(raw, MEDIAN, SCALE, settings)
    for end in range(LONG, len(raw) + 1):
        tail = degradation_block(raw[end - LONG : end], MEDIAN, SCALE, settings)
        np.testing.assert_allclose(tail[-1], full[end - 1], rtol=1e-9, atol=1e-9)


def test_block_forward_fills_like_the_window_features():
    raw = np.array([[np.nan, 2.0, 5.0], [52.0, np.nan, 5.5], [54.0, 3.0, np.nan]])
    settings = degradation_settings({"groups": ["long"], "long_window_hours": 6}, RPH)
    block = degradation_block(raw, MEDIAN, SCALE, settings)
    filled = np.array([[50.0, 2.0, 5.0], [52.0, 2.0, 5.5], [54.0, 3.0, 5.5]])
    z = (filled - MEDIAN) / SCALE
    np.testing.assert_allclose(block[:, :3], np.cumsum(z, axis=0) / np.arange(1, 4)[:, None])


def test_settings_names_and_errors():
    assert settings_feature_names(SENSORS, degradation_settings(None, RPH)) == []
    assert degradation_block(np.zeros((3, 3)), MEDIAN, SCALE, None).shape == (3, 0)
    settings = degradation_settings({"groups": ["long", "episode"]}, RPH)
    assert settings["long_rows"] == 336 and settings["baseline_rows"] == 48
    assert needs_episode_start(settings) and not needs_episode_start({"groups": ["long"]})
    assert len(settings_feature_names(SENSORS, settings)) == 2 * 3 + 1 + 1 + 3 + 2
    with pytest.raises(ValueError, match=r"features.degradation.groups: unknown groups \['wear'\]"):
        degradation_settings({"groups": ["wear"]}, RPH)


def test_the_episode_group_is_refused_at_export(machine, tiny_baselines, tiny_features):
    """The edge does not receive the last repair's time: a bundle must not promise those
    features (one clear error, not a silently different feature at the edge)."""
    from pdm_kedro.pipelines.edge_export.nodes import build_edge_manifest

    settings = degradation_settings({"groups": ["long", "episode"]}, 2.0)
    with pytest.raises(ValueError, match="the edge runtime does not receive the last repair"):
        build_edge_manifest(
            machine, {**tiny_baselines, "degradation": settings}, tiny_features["test"], {}
        )


def test_feature_tables_carry_the_configured_columns(tiny_features, tiny_baselines):
    sensors = list(tiny_baselines["sensors"])
    names = settings_feature_names(sensors, tiny_baselines["degradation"])
    assert names and names[0] == f"{sensors[0]}__zmean_24h"
    assert list(tiny_features["test"].columns[-len(names) :]) == names
