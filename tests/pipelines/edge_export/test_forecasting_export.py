"""Forecasting family: per-sensor graphs merged into one file, per-sensor views, backtest parity."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pdm_kedro.core.arima import edge_spec, hourly_means, origin_state
from pdm_kedro.edge.bundle import make_session
from pdm_kedro.edge.runtime import SensorForecastView
from pdm_kedro.pipelines.edge_export.arima_graph import forecaster_to_onnx
from pdm_kedro.pipelines.edge_export.forecasting import (
    check_forecast_parity,
    describe_forecaster,
    export_forecaster,
)
from pdm_kedro.pipelines.edge_export.nodes import EdgeParityError
from pdm_kedro.pipelines.edge_export.pipeline import create_pipeline_for_families

HORIZON, STATE_HOURS = 24, 72
START_HOUR = 480_000


def _coefficients(order, ar, ma, intercept):
    return {
        "order": list(order),
        "ar": list(ar),
        "ma": list(ma),
        "intercept": intercept,
        "beta": [0.8, -0.3],
        "sigma2": 0.5,
    }


@pytest.fixture(scope="module")
def artefact(machine):
    """A forecasting artefact with hand-set ARIMA coefficients for two key sensors."""
    sensors = {
        "winding_temperature": _coefficients((1, 0, 0), [0.7], [], 24.0),
        "current": _coefficients((1, 1, 1), [0.3], [-0.4], 0.0),
    }
    return {
        "family": "forecasting",
        "machine_id": machine["machine_id"],
        "horizon_hours": HORIZON,
        "state_hours": STATE_HOURS,
        "fourier": {"period_hours": 24, "terms": 1},
        "interval_alpha": 0.1,
        "interval_z": 1.6448536269514722,
        "sensors": {
            name: {"coefficients": coef, "plausible_band": [-1e6, 1e6]}
            for name, coef in sensors.items()
        },
    }


@pytest.fixture(scope="module")
def hourly():
    """Hourly val and test frames (``hour`` + sensors), with a few missing hours."""
    rng = np.random.default_rng(3)
    hours = np.arange(START_HOUR, START_HOUR + 400)
    frame = pd.DataFrame(
        {
            "hour": hours,
            "winding_temperature": 80 + np.cumsum(rng.normal(0, 0.3, len(hours))),
            "current": 22 + np.cumsum(rng.normal(0, 0.1, len(hours))),
        }
    )
    frame.loc[[150, 151, 260], "current"] = np.nan
    return frame.iloc[:200].reset_index(drop=True), frame.iloc[200:].reset_index(drop=True)


def _backtest(artefact, hourly, perturb=0.0):
    """Forecasts of each sensor's own graph at every 24 h origin of the test frame."""
    val, test = hourly
    spec = edge_spec(artefact)
    frame = pd.concat([val, test], ignore_index=True)
    rows = []
    for sensor in artefact["sensors"]:
        session = make_session(forecaster_to_onnx(artefact, sensor).SerializeToString())
        grid, values = frame["hour"].to_numpy(), frame[sensor].to_numpy()
        for origin in range(int(test["hour"].iloc[0]), int(test["hour"].iloc[-1]), 24):
            state = origin_state(spec, sensor, grid, values, origin)
            forecast = session.run(["forecast"], {"state": state})[0][0]
            rows.append(
                pd.DataFrame(
                    {
                        "sensor": sensor,
                        "origin_hour": origin,
                        "step": np.arange(1, HORIZON + 1),
                        "forecast": forecast * (1 + perturb),
                    }
                )
            )
    return pd.concat(rows, ignore_index=True)


def test_merged_file_answers_like_each_sensor_graph(artefact, machine, tiny_params, hourly):
    merged = make_session(
        export_forecaster(artefact, machine, tiny_params["edge_export"]).SerializeToString()
    )
    meta = merged.get_modelmeta().custom_metadata_map
    assert meta["family"] == "forecasting" and meta["machine_id"] == machine["machine_id"]
    rng = np.random.default_rng(0)
    for sensor in artefact["sensors"]:
        own = make_session(forecaster_to_onnx(artefact, sensor).SerializeToString())
        view = SensorForecastView(merged, sensor)
        state = rng.normal(size=(1, int(view.get_inputs()[0].shape[1])))
        expected = own.run(None, {"state": state})
        got = view.run(None, {view.get_inputs()[0].name: state})
        for a, b in zip(expected, got, strict=True):
            np.testing.assert_array_equal(a, b)


def test_parity_passes_on_matching_backtest(artefact, machine, tiny_params, hourly):
    onnx_model = export_forecaster(artefact, machine, tiny_params["edge_export"])
    report = check_forecast_parity(
        artefact, onnx_model, _backtest(artefact, hourly), *hourly, machine,
        tiny_params["edge_export"],
    )  # fmt: skip
    assert report["passed"] and report["max_rel_diff"] < 1e-12
    assert report["origins"] == 2 * len(range(START_HOUR + 200, START_HOUR + 399, 24))
    entry = describe_forecaster(artefact, onnx_model, {"metrics": []}, report)
    assert entry["file"] == "forecasting.onnx" and entry["sensors"] == list(artefact["sensors"])
    assert entry["spec"]["horizon_hours"] == HORIZON


def test_parity_failure_names_machine_sensor_and_origin(artefact, machine, tiny_params, hourly):
    onnx_model = export_forecaster(artefact, machine, tiny_params["edge_export"])
    off = _backtest(artefact, hourly, perturb=0.01)
    strict = tiny_params["edge_export"] | {
        "parity": tiny_params["edge_export"]["parity"] | {"on_failure": {}}
    }
    with pytest.raises(
        EdgeParityError, match=rf"{machine['machine_id']}, family forecasting.*origin hour"
    ):
        check_forecast_parity(artefact, onnx_model, off, *hourly, machine, strict)
    lenient = strict | {"parity": strict["parity"] | {"on_failure": {"forecasting": "warn"}}}
    report = check_forecast_parity(artefact, onnx_model, off, *hourly, machine, lenient)
    assert report["passed"] is False and "origin hour" in report["failure"]


def test_hourly_grid_helper_matches_the_state_window(hourly):
    val, _ = hourly
    stamps = (val["hour"].to_numpy() * 3600).astype("datetime64[s]")
    grid, means = hourly_means(stamps, val["current"].to_numpy())
    np.testing.assert_array_equal(grid, val["hour"].to_numpy())
    np.testing.assert_array_equal(np.isnan(means), val["current"].isna().to_numpy())


def test_pipeline_for_fewer_families_waits_only_for_them():
    pipe = create_pipeline_for_families(["regression"])
    assert {n for n in pipe.inputs() if not n.startswith("params:")} == {
        "regression.production_model",
        "features_test",
        "features_train",  # the anomaly reference of explanation.json (none here)
        "diagnosis.reference",  # the edge's failure-mode diagnosis
        "sensor_baselines",
    }
