"""Edge export of the forecasting family: one ONNX file holding every key sensor's graph.

Each key sensor's fitted ARIMA becomes one small graph
(:func:`.arima_graph.forecaster_to_onnx`). Here they are merged into a
single ``forecasting.onnx`` (names prefixed ``<sensor>__``) so the bundle holds one file per family;
:mod:`pdm_kedro.edge.runtime` runs it through per-sensor views. Parity: the merged graph, fed by the
edge's own state computation (:func:`pdm_kedro.core.arima.origin_state`), must reproduce the
native pmdarima forecasts of the production forecaster's test backtest (written by the forecasting
stage, ``forecasting.production_backtest_test``) at every origin and step.
"""

from __future__ import annotations

import logging
from functools import reduce
from typing import Any

import numpy as np
import onnx
import pandas as pd
from onnx import compose

from pdm_kedro.core.arima import (
    EPISODE_START_COLUMN,
    edge_spec,
    episode_start_for,
    origin_state,
)
from pdm_kedro.edge.bundle import make_session
from pdm_kedro.edge.runtime import FORECAST_PREFIX, SensorForecastView
from pdm_kedro.fleet import parse_machine

from .arima_graph import forecaster_to_onnx
from .converters import with_metadata
from .nodes import EdgeParityError, describe_for_edge, handle_parity_failure

logger = logging.getLogger(__name__)

HOUR_COLUMN = "hour"


def export_forecaster(
    model: dict[str, Any], machine: dict[str, Any], edge_export: dict[str, Any]
) -> onnx.ModelProto:
    """One ONNX model with a ``<sensor>__state`` input and ``<sensor>__forecast/lower/upper``
    outputs per key sensor (the forecasting stage's per-sensor graphs, merged)."""

    spec = parse_machine(machine)
    graphs = []
    for sensor in model["sensors"]:
        graph = forecaster_to_onnx(model, sensor)
        del graph.metadata_props[
            :
        ]  # per-sensor props clash on merge; the merged model gets its own
        graphs.append(compose.add_prefix(graph, FORECAST_PREFIX.format(sensor=sensor)))
    merged = reduce(lambda a, b: compose.merge_models(a, b, io_map=[]), graphs)
    props = {
        "machine_id": spec.machine_id,
        "family": "forecasting",
        "sensors": list(model["sensors"]),
        "horizon_hours": int(model["horizon_hours"]),
        "input_prefix": FORECAST_PREFIX,
    }
    doc = f"{spec.machine_id} forecasting: ARIMA recursions of {', '.join(model['sensors'])}"
    return with_metadata(merged, props, doc)


def _contiguous(frames: list[pd.DataFrame], sensor: str) -> tuple[np.ndarray, np.ndarray]:
    hours = np.concatenate([f[HOUR_COLUMN].to_numpy(dtype=np.int64) for f in frames])
    values = np.concatenate([f[sensor].to_numpy(dtype=np.float64) for f in frames])
    grid = np.arange(hours.min(), hours.max() + 1, dtype=np.int64)
    out = np.full(len(grid), np.nan)
    out[hours - grid[0]] = values
    return grid, out


def _episode_starts(frames: list[pd.DataFrame]) -> np.ndarray | None:
    """Episode start hours marked in the hourly frames (None when none carries the column)."""
    marked = [
        f[EPISODE_START_COLUMN].dropna().to_numpy(dtype=np.int64)
        for f in frames
        if EPISODE_START_COLUMN in f
    ]
    return np.unique(np.concatenate(marked)) if marked else None


def check_forecast_parity(
    model: dict[str, Any],
    onnx_model: onnx.ModelProto,
    backtest_test: pd.DataFrame,
    hourly_val: pd.DataFrame,
    hourly_test: pd.DataFrame,
    machine: dict[str, Any],
    edge_export: dict[str, Any],
) -> dict[str, Any]:
    """Merged ONNX graph (edge state computation) vs pmdarima on every test backtest origin.

    The edge state starts at the running episode's first hour when one lies inside its window,
    as the backtest's does (``episode_start_hour`` of the hourly frames).

    Raises:
        EdgeParityError: a forecast differs by more than ``forecast_rtol`` (relative), naming
            machine, family, sensor, the worst origin and step.
    """
    machine_id = parse_machine(machine).machine_id
    spec = edge_spec(model)
    session = make_session(onnx_model.SerializeToString())
    rtol = float(edge_export["parity"]["forecast_rtol"])
    worst = {"rel_diff": 0.0}
    compared = 0
    starts = _episode_starts([hourly_val, hourly_test])
    for sensor, rows in backtest_test.groupby("sensor", sort=True):
        grid, hourly = _contiguous([hourly_val, hourly_test], sensor)
        view = SensorForecastView(session, str(sensor))
        for origin, group in rows.groupby("origin_hour", sort=True):
            start = episode_start_for(starts, int(origin))
            state = origin_state(spec, sensor, grid, hourly, int(origin), start)
            if state is None:
                raise EdgeParityError(
                    f"ONNX parity failed for machine {machine_id}, family forecasting, sensor "
                    f"{sensor}: no edge state at origin hour {origin} where the backtest has one."
                )
            forecast = view.run(None, {view.get_inputs()[0].name: state})[0]
            steps = group["step"].to_numpy(dtype=np.int64) - 1
            native = group["forecast"].to_numpy(dtype=np.float64)
            exported = forecast[0, steps]
            rel = np.abs(exported - native) / np.maximum(np.abs(native), 1e-9)
            compared += len(rel)
            k = int(np.argmax(rel))
            if rel[k] > worst["rel_diff"]:
                worst = {
                    "rel_diff": float(rel[k]),
                    "sensor": sensor,
                    "origin_hour": int(origin),
                    "step": int(steps[k] + 1),
                    "native": float(native[k]),
                    "onnx": float(exported[k]),
                }
    report = {
        "family": "forecasting",
        "split": "test",
        "rows": compared,
        "origins": int(backtest_test[["sensor", "origin_hour"]].drop_duplicates().shape[0]),
        "max_rel_diff": worst["rel_diff"],
        "worst": worst,
        "tolerance": {"forecast_rtol": rtol},
        "decisions_compared": False,
        "mismatched_decisions": 0,
        "passed": True,
    }
    if worst["rel_diff"] > rtol:
        message = (
            f"ONNX parity failed for machine {machine_id}, family forecasting: worst sensor "
            f"{worst['sensor']} at origin hour {worst['origin_hour']}, step {worst['step']}: "
            f"native {worst['native']:.8g}, onnx {worst['onnx']:.8g}, relative diff "
            f"{worst['rel_diff']:.3g} > {rtol:g}."
        )
        return handle_parity_failure(message, "forecasting", edge_export, report)
    logger.info(
        "%s/forecasting: ONNX parity on %d test forecasts, max rel diff %.3g",
        machine_id,
        compared,
        worst["rel_diff"],
    )
    return report


def describe_forecaster(
    model: dict[str, Any],
    onnx_model: onnx.ModelProto,
    metrics: dict[str, Any],
    parity: dict[str, Any],
    registry: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The manifest entry of the forecasting family, with the edge spec its runtime reads."""
    entry = describe_for_edge(
        {"family": "forecasting", "feature_names": []}, onnx_model, metrics, parity, registry
    )
    entry.pop("feature_names")
    entry["input_name"] = FORECAST_PREFIX + "state"
    entry["sensors"] = list(model["sensors"])
    entry["horizon_hours"] = int(model["horizon_hours"])
    entry["spec"] = edge_spec(model)
    return entry
