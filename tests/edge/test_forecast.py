"""Edge forecast: numpy hourly resampling equals training's, and raw readings -> ONNX forecast
reproduces the backtest's pmdarima forecast at an origin."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import onnxruntime as ort
import pandas as pd
import pytest

from pdm_kedro.core.arima import edge_spec
from pdm_kedro.edge.forecast import forecast_from_readings, hour_index, hourly_means
from pdm_kedro.pipelines.edge_export.arima_graph import forecaster_to_onnx
from pdm_kedro.pipelines.forecasting.arima import hourly_frame


def _assert_same_hourly(frame: pd.DataFrame, sensors: list[str]) -> None:
    training = hourly_frame(frame, "timestamp", sensors)
    hours, values = hourly_means(frame["timestamp"].to_numpy(), frame[sensors].to_numpy())
    np.testing.assert_array_equal(hours, training["hour"].to_numpy())
    np.testing.assert_allclose(values, training[sensors].to_numpy(), rtol=1e-12, equal_nan=True)


def test_numpy_hourly_resampling_equals_training_on_raw_splits(tiny_splits, machine):
    for split in tiny_splits:
        _assert_same_hourly(split, machine["forecast_sensors"])


def test_numpy_hourly_resampling_with_irregular_and_missing_readings():
    rng = np.random.default_rng(7)
    stamps = pd.Timestamp("2026-03-01 05:00") + pd.to_timedelta(
        np.sort(rng.uniform(0, 72 * 60, 300)).round(), unit="min"
    )
    values = rng.normal(60.0, 5.0, (300, 2))
    values[rng.random((300, 2)) < 0.1] = np.nan
    values[100:140] = np.nan  # a gap of many hours
    frame = pd.DataFrame({"timestamp": stamps, "a": values[:, 0], "b": values[:, 1]})
    frame = frame[
        (frame["timestamp"] < "2026-03-02 10:00") | (frame["timestamp"] > "2026-03-02 20:00")
    ]
    _assert_same_hourly(frame, ["a", "b"])


def test_hour_index_is_unit_independent():
    stamps = np.array(["2026-01-01T10:59:59", "2026-01-01T11:00:00"], dtype="datetime64[s]")
    np.testing.assert_array_equal(hour_index(stamps), hour_index(stamps.astype("datetime64[ns]")))
    assert hour_index(stamps)[1] - hour_index(stamps)[0] == 1


def test_forecast_from_raw_readings_matches_the_backtest(
    tiny_forecaster,
    tiny_backtest,
    tiny_splits,
):
    model = tiny_forecaster
    spec = edge_spec(model)
    sessions = {
        s: ort.InferenceSession(
            forecaster_to_onnx(model, s).SerializeToString(), providers=["CPUExecutionProvider"]
        )
        for s in model["sensors"]
    }
    raw = pd.concat([tiny_splits[1], tiny_splits[2]], ignore_index=True)
    origins = sorted(tiny_backtest["origin_hour"].unique())
    for origin in (origins[1], origins[-2]):
        start = (origin - spec["state_hours"]) * 3_600_000_000_000
        stamps = raw["timestamp"].to_numpy().astype("datetime64[ns]")
        recent = raw[
            (stamps.astype(np.int64) >= start)
            & (stamps.astype(np.int64) < origin * 3_600_000_000_000)
        ]
        answer = forecast_from_readings(
            sessions,
            spec,
            recent["timestamp"].to_numpy(),
            {s: recent[s].to_numpy() for s in model["sensors"]},
            origin_hour=int(origin),
        )
        assert answer["origin_hour"] == origin and len(answer["hours"]) == 24
        for sensor in model["sensors"]:
            rows = tiny_backtest[
                (tiny_backtest["sensor"] == sensor) & (tiny_backtest["origin_hour"] == origin)
            ]
            got = answer["sensors"][sensor]["forecast"][rows["step"].to_numpy() - 1]
            np.testing.assert_allclose(
                got, rows["forecast"].to_numpy(), rtol=1e-3, err_msg=f"{sensor} at origin {origin}"
            )


def test_default_origin_is_the_hour_after_the_last_reading(
    tiny_forecaster,
    tiny_splits,
):
    model = tiny_forecaster
    sensor = next(iter(model["sensors"]))
    spec = edge_spec(model)
    one = {sensor: spec["sensors"][sensor]}
    session = ort.InferenceSession(
        forecaster_to_onnx(model, sensor).SerializeToString(), providers=["CPUExecutionProvider"]
    )
    recent = tiny_splits[2].iloc[:200]
    answer = forecast_from_readings(
        session, {**spec, "sensors": one}, recent["timestamp"].to_numpy(), {sensor: recent[sensor]}
    )
    assert answer["origin_hour"] == hour_index(recent["timestamp"].to_numpy())[-1] + 1
    assert np.isfinite(answer["sensors"][sensor]["forecast"]).all()
    with pytest.raises(ValueError, match="one ONNX session per sensor"):
        forecast_from_readings(session, spec, recent["timestamp"].to_numpy(), {})


def test_edge_forecast_imports_only_numpy_and_onnxruntime():
    script = (
        "import sys, pdm_kedro.edge.forecast\n"
        "heavy = [m for m in ('pandas', 'pmdarima', 'statsmodels', 'kedro', 'scipy', 'sklearn') "
        "if m in sys.modules]\n"
        "print(heavy)"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == "[]"
