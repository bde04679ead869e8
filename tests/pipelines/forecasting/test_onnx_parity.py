"""ONNX export of the forecasters: pmdarima's forecasts vs the ONNX graph on every origin."""

from __future__ import annotations

import json

import numpy as np
import onnxruntime as ort
import pytest

from pdm_kedro.core.arima import edge_spec, fourier_terms, origin_state, state_layout
from pdm_kedro.pipelines.edge_export.arima_graph import forecaster_to_onnx
from pdm_kedro.pipelines.forecasting.arima import native_forecast, window_for_origin
from pdm_kedro.pipelines.forecasting.nodes import _contiguous

RTOL = 1e-3


def _session(model):
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])


def test_onnx_reproduces_pmdarima_on_every_backtest_origin(tiny_forecaster, tiny_hourly):
    """Native = pmdarima's fitted model (statsmodels Kalman filter, coefficients fixed) over the
    same state window; ONNX = the exported graph fed by the edge's numpy state."""
    model = tiny_forecaster
    spec = edge_spec(model)
    fourier = model["fourier"]
    horizon = model["horizon_hours"]
    test = tiny_hourly["test"]
    worst = (0.0, None, None, None)
    origins = 0
    for sensor, entry in model["sensors"].items():
        session = _session(forecaster_to_onnx(model, sensor))
        grid, raw = _contiguous([tiny_hourly["val"], test], sensor)
        clean = spec["sensors"][sensor]["plausible_band"]
        clean = np.where((raw < clean[0]) | (raw > clean[1]), np.nan, raw)
        for origin in range(int(test["hour"].iloc[0]), int(test["hour"].iloc[-1]) + 1, 24):
            y_window, x_window = window_for_origin(
                grid, clean, origin, model["state_hours"], fourier
            )
            targets = np.arange(origin, origin + horizon)
            x_future = fourier_terms(targets, fourier["period_hours"], fourier["terms"])
            native = native_forecast(entry["estimator"], y_window, x_window, x_future, 0.05)[0]
            state = origin_state(spec, sensor, grid, raw, origin)
            exported = session.run(None, {"state": state})[0][0]
            rel = np.abs(exported - native) / np.maximum(np.abs(native), entry["level"])
            origins += 1
            if rel.max() > worst[0]:
                worst = (float(rel.max()), sensor, origin, int(np.argmax(rel)) + 1)
    assert origins >= 10
    assert worst[0] <= RTOL, (
        f"ONNX parity failed: machine {model['machine_id']}, family forecasting, sensor "
        f"{worst[1]}, worst origin hour {worst[2]} step {worst[3]}: relative diff {worst[0]:.3g}"
    )


def test_onnx_intervals_are_the_steady_state_ones(tiny_forecaster, tiny_backtest):
    sensor = next(iter(tiny_forecaster["sensors"]))
    session = _session(forecaster_to_onnx(tiny_forecaster, sensor))
    n = session.get_inputs()[0].shape[1]
    entry = tiny_forecaster["sensors"][sensor]
    recent = state_layout(entry["coefficients"], 24, 2)["y_recent"]
    state = np.zeros((2, n))
    state[:, :recent] = entry["level"]  # recent hours at the sensor's level: inside its range
    forecast, lower, upper = session.run(None, {"state": state})
    assert forecast.shape == (2, 24)
    np.testing.assert_allclose(upper - forecast, forecast - lower)
    assert np.all(np.diff(upper[0] - forecast[0]) >= 0)  # widening with the horizon
    meta = session.get_modelmeta().custom_metadata_map
    assert meta["sensor"] == sensor and meta["family"] == "forecasting"


def test_onnx_model_is_small(tiny_forecaster):
    for sensor in tiny_forecaster["sensors"]:
        assert forecaster_to_onnx(tiny_forecaster, sensor).ByteSize() < 100_000


def test_edge_spec_is_json_and_complete(tiny_forecaster):
    spec = json.loads(json.dumps(edge_spec(tiny_forecaster)))
    assert set(spec["sensors"]) == set(tiny_forecaster["sensors"])
    assert spec["horizon_hours"] == 24 and spec["fourier"]["period_hours"] == 24
    for entry in spec["sensors"].values():
        assert {
            "order",
            "ar",
            "ma",
            "intercept",
            "beta",
            "sigma2",
            "plausible_band",
            "state_layout",
        } <= set(entry)


def test_unknown_sensor_is_named(tiny_forecaster):
    with pytest.raises(KeyError, match="key sensors are"):
        forecaster_to_onnx(tiny_forecaster, "no_such_sensor")
