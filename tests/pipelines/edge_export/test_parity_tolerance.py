"""The parity check at its configured tolerances: one row off by just more than allowed fails.

The ONNX answers are shifted on one test row (far from the decision threshold, so only the value
check can see it) by a small multiple of the project's configured tolerance.
"""

from __future__ import annotations

import numpy as np
import pytest

import pdm_kedro.pipelines.edge_export.nodes as export_nodes
from pdm_kedro.pipelines.edge_export.nodes import (
    EdgeParityError,
    check_onnx_parity,
    export_to_onnx,
    tolerances,
)

# the documented tolerances (conf/base/parameters_edge_export.yml, edge_export README)
DOCUMENTED = {"probability_atol": 1e-4, "anomaly_score_atol": 1e-5, "rul_atol": 1e-4}


@pytest.fixture(scope="module")
def exported(tiny_models, machine, project_params):
    return {
        family: export_to_onnx(model, machine, project_params["edge_export"])
        for family, model in tiny_models.items()
    }


def test_configured_tolerances_are_the_documented_ones(project_params):
    got = tolerances(project_params["edge_export"])
    for key, value in DOCUMENTED.items():
        assert got[key] == pytest.approx(value), key
    assert got["rul_rtol"] <= 1e-5 and got["forecast_rtol"] <= 1e-3


def _shifted(monkeypatch, row: int, shift: float, column: int | None):
    real = export_nodes.run_onnx

    def run_onnx(model, x, output):
        out = np.array(real(model, x, output), dtype=np.float64)
        if column is None:
            out.reshape(-1)[row] += shift
        else:
            out[row, column] += shift
            out[row, 1 - column] -= shift
        return out

    monkeypatch.setattr(export_nodes, "run_onnx", run_onnx)


def _far_from_threshold(values: np.ndarray, threshold: float) -> int:
    return int(np.argmax(np.abs(values - threshold)))


@pytest.mark.parametrize(
    ("family", "key", "factor", "fails"),
    [
        ("classification", "probability_atol", 10.0, True),
        ("classification", "probability_atol", 0.3, False),
        ("anomaly", "anomaly_score_atol", 10.0, True),
        ("anomaly", "anomaly_score_atol", 0.3, False),
    ],
)
def test_one_row_beyond_the_tolerance_fails_the_export(
    family, key, factor, fails, exported, tiny_models, tiny_features, machine, project_params,
    monkeypatch,
):  # fmt: skip
    model = tiny_models[family]
    test = tiny_features["test"]
    x = test[list(model["feature_names"])].to_numpy(dtype=np.float32)
    if family == "classification":
        native = model["estimator"].predict_proba(x)[:, 1]
    else:
        native = -model["estimator"].decision_function(x)
    row = _far_from_threshold(native, float(model["threshold"]))
    shift = factor * tolerances(project_params["edge_export"])[key]
    # the detector's output is negated by the check: shift it so the score moves by `shift`
    _shifted(monkeypatch, row, shift if family == "classification" else -shift,
             1 if family == "classification" else None)  # fmt: skip
    settings = project_params["edge_export"]
    if fails:
        with pytest.raises(EdgeParityError, match=rf"family {family}: worst test row {row} "):
            check_onnx_parity(model, exported[family], test, machine, settings)
    else:
        report = check_onnx_parity(model, exported[family], test, machine, settings)
        assert report["passed"] is True and report["mismatched_decisions"] == 0
        assert report["max_abs_diff"] == pytest.approx(shift, rel=0.2, abs=2e-6)


def test_rul_tolerance_scales_with_the_cap(
    exported, tiny_models, tiny_features, machine, project_params, monkeypatch
):
    model = tiny_models["regression"]
    settings = project_params["edge_export"]
    tol = tolerances(settings)
    cap = float(model["rul_cap_hours"])
    bound = tol["rul_atol"] + tol["rul_rtol"] * cap  # native RUL below the cap on row 0
    test = tiny_features["test"]
    _shifted(monkeypatch, 0, 0.5 * bound, None)
    assert check_onnx_parity(model, exported["regression"], test, machine, settings)["passed"]
    _shifted(monkeypatch, 0, 3.0 * bound, None)
    with pytest.raises(EdgeParityError, match="family regression: worst test row 0 "):
        check_onnx_parity(model, exported["regression"], test, machine, settings)


def test_a_flipped_decision_fails_even_within_tolerance(
    exported, tiny_models, tiny_features, machine, project_params, monkeypatch
):
    model = tiny_models["classification"]
    test = tiny_features["test"]
    x = test[list(model["feature_names"])].to_numpy(dtype=np.float32)
    native = model["estimator"].predict_proba(x)[:, 1]
    threshold = float(model["threshold"])
    row = int(np.argmin(np.abs(native - threshold)))
    settings = {**project_params["edge_export"]}
    settings["parity"] = {**settings["parity"], "probability_atol": 1.0}
    # move the row to the other side of the threshold: value within 1.0, decision differs
    shift = (threshold - native[row]) + (1e-6 if native[row] < threshold else -1e-6)
    _shifted(monkeypatch, row, shift, 1)
    with pytest.raises(EdgeParityError, match="1 decisions differ"):
        check_onnx_parity(model, exported["classification"], test, machine, settings)
