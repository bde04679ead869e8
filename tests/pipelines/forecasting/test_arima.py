"""The native forecast: pmdarima's fitted statsmodels model, coefficients fixed, on a window."""

from __future__ import annotations

import warnings

import numpy as np

from pdm_kedro.core.arima import fourier_terms
from pdm_kedro.pipelines.forecasting.arima import native_forecast, window_for_origin
from pdm_kedro.pipelines.forecasting.nodes import _contiguous


def test_native_forecast_is_statsmodels_apply_then_get_forecast(tiny_forecaster, tiny_hourly):
    """One filter over the window plus the missing future hours gives what statsmodels'
    documented ``apply(...).get_forecast(...)`` gives (means and intervals), missing hours in
    the window included."""
    model = tiny_forecaster
    fourier = model["fourier"]
    horizon = model["horizon_hours"]
    test = tiny_hourly["test"]
    compared = 0
    for entry_sensor, entry in model["sensors"].items():
        grid, raw = _contiguous([tiny_hourly["val"], test], entry_sensor)
        raw = raw.copy()
        raw[len(raw) // 2 :: 37] = np.nan  # missing hours inside the state windows
        for origin in range(int(test["hour"].iloc[0]) + 24, int(test["hour"].iloc[-1]), 48):
            y_window, x_window = window_for_origin(grid, raw, origin, model["state_hours"], fourier)
            targets = np.arange(origin, origin + horizon)
            x_future = fourier_terms(targets, fourier["period_hours"], fourier["terms"])
            mean, lower, upper = native_forecast(
                entry["estimator"], y_window, x_window, x_future, 0.1
            )
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                applied = entry["estimator"].arima_res_.apply(y_window, exog=x_window)
                expected = applied.get_forecast(horizon, exog=x_future)
            bounds = np.asarray(expected.conf_int(alpha=0.1))
            np.testing.assert_allclose(mean, np.asarray(expected.predicted_mean), rtol=1e-9)
            np.testing.assert_allclose(lower, bounds[:, 0], rtol=1e-9)
            np.testing.assert_allclose(upper, bounds[:, 1], rtol=1e-9)
            compared += 1
    assert compared >= 4
