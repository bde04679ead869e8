"""core.arima: the mean-reverting blend stays an affine map of the state, intervals respect the
physical range, and the state does not reach back across an episode start."""

from __future__ import annotations

import numpy as np
import pytest

from pdm_kedro.core.arima import (
    _split_state,
    arima_half_widths,
    blend_weights,
    build_state_row,
    clip_to_range,
    episode_start_for,
    forecast_matrix,
    fourier_terms,
    interval_half_widths,
    level_forecast,
    linear_forecast,
    origin_state,
    point_forecast,
)

COEF = {
    "order": [2, 1, 0],
    "ar": [0.4, -0.1],
    "ma": [],
    "intercept": 0.05,
    "beta": [1.5, -0.7],
    "sigma2": 4.0,
    "level": {"intercept": 50.0, "beta": [2.0, 1.0], "sigma": 6.0},
    "decay": 0.9,
    "physical_range": [0.0, 80.0],
}
H, NF = 24, 2


def _spec(coef: dict) -> dict:
    return {
        "horizon_hours": H,
        "state_hours": 48,
        "fourier": {"period_hours": 24, "terms": 1},
        "sensors": {"s": {**coef, "plausible_band": None}},
    }


def test_blend_is_the_documented_combination_and_decay_one_is_plain_arima():
    rng = np.random.default_rng(0)
    y, xr = rng.normal(40, 3, 3), rng.normal(size=(3, NF))
    xf = fourier_terms(np.arange(100, 100 + H), 24, 1)
    arima = linear_forecast(COEF, y, np.zeros(0), xr, xf)
    w = 0.9 ** np.arange(1, H + 1)
    level = 50.0 + xf @ np.array([2.0, 1.0])
    np.testing.assert_allclose(
        point_forecast(COEF, y, np.zeros(0), xr, xf), w * arima + (1 - w) * level
    )
    np.testing.assert_allclose(level_forecast(COEF, xf), level)
    plain = {**COEF, "decay": 1.0}
    np.testing.assert_array_equal(point_forecast(plain, y, np.zeros(0), xr, xf), arima)
    np.testing.assert_array_equal(blend_weights(plain, H), np.ones(H))


def test_forecast_matrix_reproduces_the_blended_forecast():
    weights, bias = forecast_matrix(COEF, H, NF)
    rng = np.random.default_rng(1)
    for _ in range(5):
        state = rng.normal(30, 10, weights.shape[0])
        expected = point_forecast(COEF, *_split_state(COEF, state, NF))
        np.testing.assert_allclose(state @ weights + bias, expected, rtol=1e-10, atol=1e-9)


def test_half_widths_move_from_the_arima_to_the_level_ones():
    half = interval_half_widths(COEF, H, 1.96)
    arima = arima_half_widths(COEF, H, 1.96)
    w = 0.9 ** np.arange(1, H + 1)
    np.testing.assert_allclose(half, w * arima + (1 - w) * 1.96 * 6.0)
    np.testing.assert_array_equal(interval_half_widths({**COEF, "decay": 1.0}, H, 1.96), arima)


def test_clipping_keeps_values_inside_the_physical_range():
    clipped = clip_to_range(COEF, np.array([-5.0, 10.0, 95.0]))
    np.testing.assert_array_equal(clipped, [0.0, 10.0, 80.0])
    no_range = {k: v for k, v in COEF.items() if k != "physical_range"}
    np.testing.assert_array_equal(clip_to_range(no_range, np.array([-5.0])), [-5.0])


def test_episode_start_is_the_latest_start_up_to_the_origin():
    starts = np.array([100, 250, 400])
    assert episode_start_for(starts, 99) is None
    assert episode_start_for(starts, 250) == 250
    assert episode_start_for(starts, 399) == 250
    assert episode_start_for(None, 399) is None


def test_state_ignores_every_hour_before_the_episode_start():
    spec = _spec(COEF)
    hours = np.arange(1000, 1100)
    rng = np.random.default_rng(2)
    values = 40 + rng.normal(0, 2, len(hours))
    # four hours into a new episode, its second hour missing: the state (the last p + d = 3
    # hours, the missing one filled from its neighbours) would reach back into the failed
    # episode without the reset
    origin, start = 1064, 1060
    values[hours == start + 1] = np.nan
    state = origin_state(spec, "s", hours, values, origin, episode_start=start)
    changed = values.copy()
    changed[hours < start] = 120.0  # the failed episode's last hours, far from the new level
    assert np.array_equal(state, origin_state(spec, "s", hours, changed, origin, start))
    assert not np.array_equal(state, origin_state(spec, "s", hours, changed, origin))
    # the same state as a series that starts at the episode start
    keep = hours >= start
    assert np.array_equal(state, origin_state(spec, "s", hours[keep], values[keep], origin))
    # an origin at the episode's first hours has no state: fewer than p + d hours since it
    for early in (start, start + 1, start + 2):
        assert origin_state(spec, "s", hours, values, early, episode_start=start) is None
    # a start before the window changes nothing
    assert np.array_equal(
        origin_state(spec, "s", hours, values, origin, episode_start=1000),
        origin_state(spec, "s", hours, values, origin),
    )


def test_build_state_row_layout_is_unchanged_by_the_blend():
    y = np.arange(5.0)
    x = fourier_terms(np.arange(5), 24, 1)
    xf = fourier_terms(np.arange(5, 5 + H), 24, 1)
    row = build_state_row(COEF, y, np.zeros(5), x, xf)
    assert row.shape == (1, 3 + 3 * NF + H * NF)
    with pytest.raises(ValueError):
        forecast_matrix({**COEF, "order": [2, 1]}, H, NF)
