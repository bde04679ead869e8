"""Edge forecast values beyond the point forecast (mutants of edge/forecast.py that survived).

The interval around every sensor's forecast, the forecast hours, readings outside the state
window ignored, and a window without readings answered with NaNs for every sensor.
"""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest

from pdm_kedro.core.arima import edge_spec
from pdm_kedro.edge.forecast import forecast_from_readings, hour_index
from pdm_kedro.pipelines.edge_export.arima_graph import forecaster_to_onnx

PARTS = ("forecast", "lower", "upper")


@pytest.fixture(scope="module")
def edge_forecaster(tiny_forecaster) -> tuple[dict, dict]:
    spec = edge_spec(tiny_forecaster)
    sessions = {
        sensor: ort.InferenceSession(
            forecaster_to_onnx(tiny_forecaster, sensor).SerializeToString(),
            providers=["CPUExecutionProvider"],
        )
        for sensor in tiny_forecaster["sensors"]
    }
    return spec, sessions


@pytest.fixture(scope="module")
def test_split(tiny_splits, edge_forecaster):
    spec, _ = edge_forecaster
    split = tiny_splits[2]
    stamps = split["timestamp"].to_numpy()
    hours = hour_index(stamps)
    origin = int(hours[0]) + int(spec["state_hours"]) + 7
    assert (hours >= origin).sum() > 10  # readings after the origin exist (and must be ignored)
    return split, stamps, hours, origin


def _readings(split, sensors, rows=slice(None)) -> dict[str, np.ndarray]:
    return {sensor: split[sensor].to_numpy()[rows] for sensor in sensors}


def test_every_sensor_gets_its_interval_and_the_forecast_hours(edge_forecaster, test_split):
    spec, sessions = edge_forecaster
    split, stamps, _, origin = test_split
    answer = forecast_from_readings(
        sessions, spec, stamps, _readings(split, spec["sensors"]), origin_hour=origin
    )
    horizon = int(spec["horizon_hours"])
    assert answer["origin_hour"] == origin
    assert answer["hours"].dtype == np.int64
    np.testing.assert_array_equal(answer["hours"], np.arange(origin, origin + horizon))
    assert set(answer["sensors"]) == set(spec["sensors"]) and len(spec["sensors"]) >= 2
    for sensor, out in answer["sensors"].items():
        assert set(out) == set(PARTS), sensor
        forecast, lower, upper = (np.asarray(out[part]) for part in PARTS)
        assert all(len(a) == horizon and np.isfinite(a).all() for a in (forecast, lower, upper))
        assert (lower < forecast).all() and (forecast < upper).all(), sensor


def test_readings_outside_the_state_window_change_nothing(edge_forecaster, test_split):
    spec, sessions = edge_forecaster
    split, stamps, hours, origin = test_split
    window = (hours >= origin - int(spec["state_hours"])) & (hours < origin)
    everything = forecast_from_readings(
        sessions, spec, stamps, _readings(split, spec["sensors"]), origin_hour=origin
    )
    only_window = forecast_from_readings(
        sessions,
        spec,
        stamps[window],
        _readings(split, spec["sensors"], window),
        origin_hour=origin,
    )
    without_first_hour = window & (hours > origin - int(spec["state_hours"]))
    shorter = forecast_from_readings(
        sessions,
        spec,
        stamps[without_first_hour],
        _readings(split, spec["sensors"], without_first_hour),
        origin_hour=origin,
    )
    for sensor in spec["sensors"]:
        for part in PARTS:
            np.testing.assert_array_equal(
                everything["sensors"][sensor][part], only_window["sensors"][sensor][part]
            )
    # the window's first hour counts: leaving it out changes some sensor's answer
    assert any(
        not np.array_equal(shorter["sensors"][s]["forecast"], only_window["sensors"][s]["forecast"])
        for s in spec["sensors"]
    )


def test_a_window_without_readings_gives_nans_for_every_sensor(edge_forecaster, test_split):
    spec, sessions = edge_forecaster
    split, stamps, hours, _ = test_split
    late = (
        int(hours.max()) + int(spec["state_hours"]) + 50
    )  # every reading is older than the window
    answer = forecast_from_readings(
        sessions, spec, stamps, _readings(split, spec["sensors"]), origin_hour=late
    )
    horizon = int(spec["horizon_hours"])
    assert set(answer["sensors"]) == set(spec["sensors"])
    for sensor, out in answer["sensors"].items():
        assert set(out) == set(PARTS), sensor
        for part in PARTS:
            values = np.asarray(out[part])
            assert len(values) == horizon and np.isnan(values).all(), (sensor, part)
