"""ONNX export of the fitted ARIMA forecasters (the spec the edge needs: ``core.arima.edge_spec``).

Once fitted, an ARIMA(p, d, q) with Fourier regressors forecasts by a fixed linear recursion, so
its H forecasts are an affine map of one ``state`` row (last p+d observations, last q residuals,
their Fourier terms and the future Fourier terms; layout in :mod:`pdm_kedro.core.arima`).
The point forecast (the recursion blended with the sensor's long-run level, see the module
:mod:`pdm_kedro.core.arima`) is still affine in the state: the graph is ``mean = state @ W + b``,
``forecast = clip(mean)``, ``lower/upper = clip(mean -/+ half_width)`` in float64, clipped to
the sensor's physical range.
One graph per key sensor: ``forecaster_to_onnx(model_artifact, sensor)``.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from pdm_kedro.core.arima import clip_bounds, forecast_matrix, interval_half_widths, state_layout

ONNX_OPSET = 17
INPUT_NAME = "state"
OUTPUT_NAMES = ("forecast", "lower", "upper")


def forecaster_to_onnx(model_artifact: dict[str, Any], sensor: str) -> onnx.ModelProto:
    """A small ONNX graph reproducing the sensor's ARIMA forecasts and intervals from its state.

    Raises:
        KeyError: ``sensor`` is not one of the artefact's key sensors (the message lists them).
    """
    if sensor not in model_artifact["sensors"]:
        raise KeyError(
            f"{model_artifact.get('machine_id')}: no forecaster for sensor {sensor!r}; "
            f"key sensors are {sorted(model_artifact['sensors'])}"
        )
    coef = model_artifact["sensors"][sensor]["coefficients"]
    horizon = int(model_artifact["horizon_hours"])
    n_fourier = 2 * int(model_artifact["fourier"]["terms"])
    weights, bias = forecast_matrix(coef, horizon, n_fourier)
    half = interval_half_widths(coef, horizon, float(model_artifact["interval_z"]))
    n_state = weights.shape[0]
    low, high = clip_bounds(coef)

    inits = [
        numpy_helper.from_array(weights.astype(np.float64), "weights"),
        numpy_helper.from_array(bias.reshape(1, -1).astype(np.float64), "bias"),
        numpy_helper.from_array(half.reshape(1, -1).astype(np.float64), "half_width"),
        numpy_helper.from_array(np.array(low, dtype=np.float64), "range_min"),
        numpy_helper.from_array(np.array(high, dtype=np.float64), "range_max"),
    ]
    clip = ["range_min", "range_max"]
    nodes = [
        helper.make_node("MatMul", [INPUT_NAME, "weights"], ["linear"], name="recursion"),
        helper.make_node("Add", ["linear", "bias"], ["mean"], name="add_constant"),
        helper.make_node("Sub", ["mean", "half_width"], ["mean_lower"], name="lower_bound"),
        helper.make_node("Add", ["mean", "half_width"], ["mean_upper"], name="upper_bound"),
        helper.make_node("Clip", ["mean", *clip], ["forecast"], name="clip_forecast"),
        helper.make_node("Clip", ["mean_lower", *clip], ["lower"], name="clip_lower"),
        helper.make_node("Clip", ["mean_upper", *clip], ["upper"], name="clip_upper"),
    ]
    graph = helper.make_graph(
        nodes,
        f"arima_forecast_{sensor}",
        [helper.make_tensor_value_info(INPUT_NAME, TensorProto.DOUBLE, ["N", n_state])],
        [
            helper.make_tensor_value_info(n, TensorProto.DOUBLE, ["N", horizon])
            for n in OUTPUT_NAMES
        ],
        initializer=inits,
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", ONNX_OPSET)],
        producer_name="pdm_kedro.forecasting",
    )
    model.ir_version = 8
    helper.set_model_props(
        model,
        {
            "machine_id": str(model_artifact["machine_id"]),
            "family": "forecasting",
            "sensor": sensor,
            "order": json.dumps([int(v) for v in coef["order"]]),
            "horizon_hours": str(horizon),
            "state_layout": json.dumps(state_layout(coef, horizon, n_fourier)),
            "decay": str(float(coef.get("decay", 1.0))),
            "physical_range": json.dumps([low, high]),
        },
    )
    onnx.checker.check_model(model)
    return model
