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
    fit_signature,
    history_rows,
    needs_episode_start,
    settings_feature_names,
    signature_feature_names,
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


# --- the signature group: one health indicator per failure mode --------------------------------

SIG_SENSORS = [
    {"name": "t1", "nominal": 50.0, "noise": 1.0},
    {"name": "v1", "nominal": 2.0, "noise": 0.1},
    {"name": "p1", "nominal": 5.0, "noise": 0.2},
]
SIG_MODES = {
    "bearing": {"v1": {"level": 2.0}, "t1": {"level": 0.1}},
    "seal": {"p1": {"level": -0.4}},
    "none_moved": {"t1": {"level": 0.0}},  # no level change: no indicator
}
LEVEL = {"low": np.array([45.0, 1.8, 4.0]), "high": np.array([55.0, 2.2, 6.0])}


def _signature_settings(**overrides):
    sig = {"mean_hours": [2, 4], "slope_hours": [4, 6], "clip": [-0.5, 1.5], "reference_hours": 3}
    sig.update(overrides)
    return degradation_settings(
        {"groups": ["signature"], "long_window_hours": 6, "signature": sig}, RPH
    )


def _episode(n, mode_direction, wear_sq, regimes, rng):
    base = np.vstack([LEVEL[r] for r in regimes])
    noise = rng.normal(0, 1, (n, 3)) * np.array([1.0, 0.1, 0.2]) * 0.2
    return base + wear_sq[:, None] * mode_direction[None, :] + noise


def test_signature_fit_reference_per_regime_and_directions():
    rng = np.random.default_rng(1)
    regimes = np.array(["low", "high"] * 20)
    readings = _episode(40, np.zeros(3), np.zeros(40), regimes, rng)
    readings[6:20, 1] += (
        5.0  # later rows are not part of the healthy reference (first 3 h = 6 rows)
    )
    readings[26:, 1] += 5.0
    settings = _signature_settings()
    fitted = fit_signature(readings, regimes, np.array([0, 20]), SIG_SENSORS, SIG_MODES, settings)
    assert fitted["modes"] == ["bearing", "seal"]  # a mode that moves no level has no indicator
    np.testing.assert_allclose(fitted["direction"][0], [50.0 * 0.1, 2.0 * 2.0, 0.0])
    np.testing.assert_allclose(fitted["direction"][1], [0.0, 0.0, 5.0 * -0.4])
    np.testing.assert_allclose(fitted["weight"], [1.0, 100.0, 25.0])
    for regime in ("low", "high"):
        np.testing.assert_allclose(fitted["reference"][regime], LEVEL[regime], atol=0.1)
    assert fitted["fitted_on"]["reference_rows"] == 12
    assert fit_signature(readings, regimes, np.array([0]), SIG_SENSORS, {"x": {}}, settings) is None


def test_signature_indicator_estimates_the_mode_progress_and_picks_the_mode():
    rng = np.random.default_rng(2)
    settings = _signature_settings()
    n = 60
    regimes = rng.choice(["low", "high"], n)
    wear_sq = np.linspace(0.0, 1.0, n) ** 2
    train = _episode(n, np.zeros(3), np.zeros(n), regimes, rng)
    settings["signature"] = fit_signature(
        train, regimes, np.array([0]), SIG_SENSORS, SIG_MODES, settings
    )
    names = signature_feature_names(settings)
    assert names[:4] == [
        "hi_bearing__mean_2h", "hi_bearing__mean_4h", "hi_bearing__slope_4h", "hi_bearing__slope_6h"
    ]  # fmt: skip
    assert names[-3:] == ["hi_best__mean_4h", "hi_best__slope_4h", "hi_best__slope_6h"]
    seal = np.array(settings["signature"]["direction"][1])
    readings = _episode(n, seal, wear_sq, regimes, rng)
    table = pd.DataFrame(
        degradation_block(readings, MEDIAN, SCALE, settings, regimes), columns=names
    )
    # the seal indicator follows the seal's progress (2 h mean = 4 readings, lagging it a little)
    want = pd.Series(wear_sq).rolling(4, min_periods=1).mean()
    np.testing.assert_allclose(table["hi_seal__mean_2h"], want, atol=0.05)
    assert abs(table["hi_bearing__mean_4h"]).max() < 0.05  # the other mode stays at 0
    late = table.index >= 20
    np.testing.assert_array_equal(table["hi_best__mean_4h"][late], table["hi_seal__mean_4h"][late])
    np.testing.assert_array_equal(
        table["hi_best__slope_6h"][late], table["hi_seal__slope_6h"][late]
    )
    assert table["hi_best__slope_6h"].iloc[-1] > 0


def test_signature_indicator_clips_a_sensor_fault_and_needs_regimes():
    rng = np.random.default_rng(3)
    settings = _signature_settings(mean_hours=[1])  # 2 readings
    regimes = np.array(["low"] * 30)
    train = _episode(30, np.zeros(3), np.zeros(30), regimes, rng)
    regimes2 = np.array(["low", "high"] * 15)
    settings["signature"] = fit_signature(
        _episode(30, np.zeros(3), np.zeros(30), regimes2, rng), regimes2, np.array([0]),
        SIG_SENSORS, SIG_MODES, settings,
    )  # fmt: skip
    readings = train.copy()
    readings[10, 2] = -500.0  # a dropout to a nonsense pressure
    block = degradation_block(readings, MEDIAN, SCALE, settings, regimes)
    names = signature_feature_names(settings)
    # the -500 reading's indicator is 1.5, not about 250: a 2-reading mean of at most (1.5 + 0.1) / 2
    assert 0.6 < block[10, names.index("hi_seal__mean_1h")] <= 0.8
    with pytest.raises(ValueError, match="need each reading's operating regime"):
        degradation_block(readings, MEDIAN, SCALE, settings, None)


def test_signature_group_is_causal_and_the_last_row_needs_only_its_history():
    rng = np.random.default_rng(4)
    settings = _signature_settings()
    n = 50
    regimes = rng.choice(["low", "high"], n)
    settings["signature"] = fit_signature(
        _episode(n, np.zeros(3), np.zeros(n), regimes, rng), regimes, np.array([0]),
        SIG_SENSORS, SIG_MODES, settings,
    )  # fmt: skip
    bearing = np.array(settings["signature"]["direction"][0])
    raw = _episode(n, bearing, np.linspace(0, 1, n), regimes, rng)
    raw[7, 0] = np.nan  # forward filled like the window features
    full = degradation_block(raw, MEDIAN, SCALE, settings, regimes)
    for cut in (1, 5, 23, 49):
        head = degradation_block(raw[:cut], MEDIAN, SCALE, settings, regimes[:cut])
        np.testing.assert_array_equal(head, full[:cut])
    rows = history_rows(settings)
    assert rows == 12  # the longest window: 6 h at 2 readings per hour
    for end in range(rows + 8, n + 1):
        tail = degradation_block(
            raw[end - rows : end], MEDIAN, SCALE, settings, regimes[end - rows : end]
        )
        np.testing.assert_allclose(tail[-1], full[end - 1], rtol=1e-9, atol=1e-9)


def test_signature_settings_errors_and_no_modes_no_columns():
    with pytest.raises(ValueError, match="features.degradation.signature"):
        _signature_settings(clip=[1.0, 0.0])
    settings = _signature_settings()
    settings["signature"] = None  # nothing fitted (condition-scaled data, no signatures)
    assert settings_feature_names(SENSORS, settings) == []
    assert degradation_block(np.zeros((4, 3)), MEDIAN, SCALE, settings).shape == (4, 0)
