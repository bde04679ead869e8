"""Edge forecasts of mean-reverting forecasters from raw readings: equal to the training
backtest, clipped to the physical range, and never from a state across a repair."""

from __future__ import annotations

import copy

import numpy as np
import onnxruntime as ort
import pandas as pd

from pdm_kedro.core.arima import HOUR_NS, edge_spec
from pdm_kedro.edge.forecast import forecast_from_readings
from pdm_kedro.pipelines.edge_export.arima_graph import forecaster_to_onnx
from pdm_kedro.pipelines.forecasting.nodes import backtest_forecasters


def _blended(model: dict, decay: float) -> dict:
    out = copy.copy(model)
    out["sensors"] = {
        s: {**e, "coefficients": {**e["coefficients"], "decay": decay}}
        for s, e in model["sensors"].items()
    }
    return out


def _sessions(model: dict) -> dict:
    return {
        s: ort.InferenceSession(
            forecaster_to_onnx(model, s).SerializeToString(), providers=["CPUExecutionProvider"]
        )
        for s in model["sensors"]
    }


def _readings(frame: pd.DataFrame, first_hour: int, origin: int) -> pd.DataFrame:
    ns = frame["timestamp"].to_numpy().astype("datetime64[ns]").astype(np.int64)
    return frame[(ns >= first_hour * HOUR_NS) & (ns < origin * HOUR_NS)]


def test_edge_equals_the_backtest_of_a_mean_reverting_forecaster(
    tiny_forecaster, tiny_hourly, tiny_splits, fc_params
):
    model = _blended(tiny_forecaster, 0.9)
    params = {**fc_params, "native_forecast_splits": []}
    backtest = backtest_forecasters(model, tiny_hourly["val"], tiny_hourly["test"], params, "test")
    spec, sessions = edge_spec(model), _sessions(model)
    raw = pd.concat([tiny_splits[1], tiny_splits[2]], ignore_index=True)
    origins = sorted(backtest["origin_hour"].unique())
    for origin in (origins[1], origins[-2]):
        recent = _readings(raw, origin - spec["state_hours"], origin)
        answer = forecast_from_readings(
            sessions,
            spec,
            recent["timestamp"].to_numpy(),
            {s: recent[s].to_numpy() for s in model["sensors"]},
            origin_hour=int(origin),
        )
        for sensor in model["sensors"]:
            rows = backtest[(backtest["sensor"] == sensor) & (backtest["origin_hour"] == origin)]
            got = answer["sensors"][sensor]
            steps = rows["step"].to_numpy() - 1
            np.testing.assert_allclose(got["forecast"][steps], rows["forecast"], rtol=1e-9)
            np.testing.assert_allclose(got["lower"][steps], rows["lower"], rtol=1e-9)
            np.testing.assert_allclose(got["upper"][steps], rows["upper"], rtol=1e-9)
            low, high = spec["sensors"][sensor]["physical_range"]
            assert (got["lower"] >= low).all() and (got["upper"] <= high).all()


def test_the_edge_state_starts_at_the_episode_start(tiny_forecaster, tiny_splits):
    model = _blended(tiny_forecaster, 0.9)
    spec, sessions = edge_spec(model), _sessions(model)
    test = tiny_splits[2]
    episode = test[test["episode_id"] == test["episode_id"].iloc[-1]]
    start = int(
        (pd.Timestamp(episode["timestamp"].min()) - pd.Timestamp(0)) // pd.Timedelta(hours=1)
    )
    raw = pd.concat([tiny_splits[1], test], ignore_index=True)
    sensors = list(model["sensors"])

    def answer(frame, origin, **kwargs):
        return forecast_from_readings(
            sessions,
            spec,
            frame["timestamp"].to_numpy(),
            {s: frame[s].to_numpy() for s in sensors},
            origin_hour=origin,
            **kwargs,
        )

    # a day into the new episode: the readings across the repair with its start hour give the
    # readings-from-the-episode-start answer (the edge's from_episode_start)
    origin = start + 24
    across = _readings(raw, origin - spec["state_hours"], origin)
    since = _readings(raw, start, origin)
    told = answer(across, origin, episode_start_hour=start)
    alone = answer(since, origin)
    for sensor in sensors:
        for key in ("forecast", "lower", "upper"):
            np.testing.assert_array_equal(
                told["sensors"][sensor][key], alone["sensors"][sensor][key]
            )
    # right after the repair there is no state yet: no forecast from the failed episode's state
    early = start  # the first hour of the new episode: nothing of it seen yet
    none = answer(
        _readings(raw, early - spec["state_hours"], early), early, episode_start_hour=start
    )
    stale = answer(_readings(raw, early - spec["state_hours"], early), early)
    for sensor in sensors:
        assert np.isnan(none["sensors"][sensor]["forecast"]).all()
        assert np.isfinite(stale["sensors"][sensor]["forecast"]).all()
