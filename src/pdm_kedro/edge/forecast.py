"""24-hour sensor forecasts on the edge from raw readings, with the forecasting ONNX graph.

numpy and onnxruntime sessions only; the maths (hourly means, ARIMA state, the recursion the
ONNX graph runs) is :mod:`pdm_kedro.core.arima`, shared with training.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from pdm_kedro.core.arima import HOUR_NS, hour_index, hourly_means, origin_state

__all__ = ["forecast_from_readings", "hour_index", "hourly_means", "origin_state"]


def forecast_from_readings(
    session_or_sessions: Any,
    spec: Mapping[str, Any],
    timestamps: np.ndarray,
    readings: Mapping[str, np.ndarray],
    origin_hour: int | None = None,
    episode_start_hour: int | None = None,
) -> dict[str, Any]:
    """A 24-hour forecast of every key sensor from raw recent readings.

    Args:
        session_or_sessions: ``{sensor: onnxruntime.InferenceSession}`` (one graph per sensor), or
            one session when the spec has a single sensor.
        spec: the edge spec (:func:`pdm_kedro.core.arima.edge_spec`).
        timestamps: reading times (datetime64 or int64 ns), oldest first; at least the
            ``state_hours`` hours before the origin should be covered.
        readings: ``{sensor: values}`` aligned with ``timestamps`` (NaN = missing).
        origin_hour: first forecast hour (hour index); default: the hour after the last reading.
        episode_start_hour: the hour the running episode started (after a repair), when known:
            the state window starts there when it lies inside it, so no state carries across
            a repair. Readings that start at the episode start (``from_episode_start``) give the
            same result without it: the window holds only their hours.

    Returns:
        ``{"origin_hour", "hours" (H target hour indices), "sensors": {sensor: {"forecast",
        "lower", "upper"}}}`` (blended with the level and clipped to the physical range by the
        graph); a sensor without any reading in the state window gets NaNs.
    """
    sensors = list(spec["sensors"])
    if isinstance(session_or_sessions, Mapping):
        sessions = dict(session_or_sessions)
    elif len(sensors) == 1:
        sessions = {sensors[0]: session_or_sessions}
    else:
        raise ValueError(f"one ONNX session per sensor is needed for {sensors}")
    horizon = int(spec["horizon_hours"])
    hours_raw = hour_index(timestamps)
    origin = int(hours_raw.max()) + 1 if origin_hour is None else int(origin_hour)
    first = origin - int(spec["state_hours"])
    if episode_start_hour is not None:
        first = max(first, int(episode_start_hour))
    keep = (hours_raw >= first) & (hours_raw < origin)
    out: dict[str, Any] = {
        "origin_hour": origin,
        "hours": np.arange(origin, origin + horizon, dtype=np.int64),
        "sensors": {},
    }
    for sensor in sensors:
        values = np.asarray(readings[sensor], dtype=np.float64)[keep]
        if not keep.any():
            state = None
        else:
            grid, hourly = hourly_means(hours_raw[keep] * HOUR_NS, values, first, origin - 1)
            state = origin_state(spec, sensor, grid, hourly, origin, episode_start_hour)
        if state is None:
            nan = np.full(horizon, np.nan)
            out["sensors"][sensor] = {"forecast": nan, "lower": nan, "upper": nan}
            continue
        session = sessions[sensor]
        forecast, lower, upper = session.run(None, {session.get_inputs()[0].name: state})
        out["sensors"][sensor] = {
            "forecast": forecast[0],
            "lower": lower[0],
            "upper": upper[0],
        }
    return out
