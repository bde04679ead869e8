"""Mean reversion chosen on val, intervals inside the physical range, no state across a repair,
and the blended forecasters' ONNX graphs equal the backtest (pmdarima blended the same way)."""

from __future__ import annotations

import copy

import numpy as np
import onnxruntime as ort
import pandas as pd
import pytest

from pdm_kedro.core.arima import edge_spec, episode_start_for, origin_state
from pdm_kedro.pipeline_registry import discover_templates, namespace_for_machine
from pdm_kedro.pipelines.edge_export.arima_graph import forecaster_to_onnx
from pdm_kedro.pipelines.forecasting.arima import episode_starts
from pdm_kedro.pipelines.forecasting.nodes import (
    _contiguous,
    backtest_forecasters,
    choose_forecasters,
    decay_grid,
    evaluate_forecasts,
    parity_gap,
)
from tests.conftest import TEST_MACHINE

M = TEST_MACHINE


def _with(model: dict, decay: float, ranges: dict | None = None) -> dict:
    out = copy.copy(model)
    out["sensors"] = {}
    for sensor, entry in model["sensors"].items():
        coef = {**entry["coefficients"], "decay": decay}
        if ranges:
            coef["physical_range"] = ranges[sensor]
        out["sensors"][sensor] = {**entry, "coefficients": coef}
    return out


@pytest.fixture(scope="module")
def linear_params(fc_params):
    return {**fc_params, "native_forecast_splits": []}


@pytest.fixture(scope="module")
def arima_val(tiny_forecaster, tiny_hourly, linear_params):
    return backtest_forecasters(
        tiny_forecaster, tiny_hourly["train"], tiny_hourly["val"], linear_params, split="val"
    )


@pytest.fixture(scope="module")
def blended(tiny_forecaster):
    return _with(tiny_forecaster, 0.9)


@pytest.fixture(scope="module")
def blended_test(blended, tiny_hourly, fc_params):
    """Test backtest of the blended forecasters with pmdarima's own forecasts at every origin."""
    return backtest_forecasters(
        blended, tiny_hourly["val"], tiny_hourly["test"], fc_params, split="test"
    )


def test_the_choice_node_reads_the_val_backtest_and_nothing_of_test():
    pipe = namespace_for_machine(discover_templates()["forecasting"], M)
    node = next(n for n in pipe.nodes if n.name.endswith(".choose_forecasters"))
    assert set(node.inputs) == {
        f"{M}.forecasting.arima_forecasters",
        f"{M}.forecasting.arima_backtest_val",
        "params:forecasting",
    }
    upstream = pipe.to_outputs(f"{M}.forecasting.model").inputs()
    assert f"{M}.validated_val" in upstream and f"{M}.validated_train" in upstream
    assert not any("test" in name for name in upstream)


def test_decay_is_chosen_by_val_mape(tiny_forecaster, arima_val, fc_params):
    """Actuals at the level: the strongest reversion wins; actuals = the ARIMA forecast: 1."""
    grid = decay_grid(fc_params["blend"]["decay_grid"])
    at_level = arima_val.assign(actual=arima_val["level"])
    chosen = choose_forecasters(tiny_forecaster, at_level, fc_params)
    at_arima = arima_val.assign(actual=arima_val["forecast"])
    kept = choose_forecasters(tiny_forecaster, at_arima, fc_params)
    for sensor in tiny_forecaster["sensors"]:
        assert chosen["sensors"][sensor]["coefficients"]["decay"] == pytest.approx(grid.min())
        assert kept["sensors"][sensor]["coefficients"]["decay"] == 1.0
        choice = chosen["sensors"][sensor]["choice"]
        assert choice["chosen_on"] == "val"
        assert choice["val_mape"] == min(choice["val_mape_by_decay"].values())
    # the input model is not changed
    assert all(e["coefficients"]["decay"] == 1.0 for e in tiny_forecaster["sensors"].values())


def test_decay_choice_on_the_real_val_backtest_is_a_grid_value_no_worse_than_arima(
    tiny_forecaster, arima_val, fc_params
):
    chosen = choose_forecasters(tiny_forecaster, arima_val, fc_params)
    grid = set(decay_grid(fc_params["blend"]["decay_grid"]).tolist())
    for entry in chosen["sensors"].values():
        assert entry["coefficients"]["decay"] in grid
        assert entry["choice"]["val_mape"] <= entry["choice"]["val_mape_plain_arima"]


def test_a_bad_decay_grid_fails_naming_the_parameter():
    with pytest.raises(ValueError, match="forecasting.blend.decay_grid"):
        decay_grid({"start": 0.5, "stop": 1.2, "step": 0.01})


def test_intervals_stay_inside_the_physical_range(blended, tiny_hourly, fc_params, machine):
    ranges = {s["name"]: [s["min"], s["max"]] for s in machine["sensors"]}
    for sensor in blended["sensors"]:
        assert blended["sensors"][sensor]["coefficients"]["physical_range"] == ranges[sensor]
    # a narrow range that the intervals cross
    narrow = {}
    for sensor, entry in blended["sensors"].items():
        lo = entry["level"]
        narrow[sensor] = [0.97 * lo, 1.03 * lo]
    model = _with(blended, 0.9, narrow)
    bt = backtest_forecasters(model, tiny_hourly["val"], tiny_hourly["test"], fc_params, "test")
    for sensor, part in bt.groupby("sensor"):
        lo, hi = narrow[sensor]
        for col in ("forecast", "lower", "upper", "forecast_linear"):
            assert part[col].between(lo, hi).all(), (sensor, col)
        assert (part["lower"] == lo).any() and (part["upper"] == hi).any()
        session = ort.InferenceSession(
            forecaster_to_onnx(model, sensor).SerializeToString(),
            providers=["CPUExecutionProvider"],
        )
        n = session.get_inputs()[0].shape[1]
        states = np.random.default_rng(3).normal(0, 5 * hi, (20, n))
        for out in session.run(None, {"state": states}):
            assert (out >= lo).all() and (out <= hi).all()


def test_blended_onnx_equals_the_blended_pmdarima_backtest(blended, blended_test, tiny_hourly):
    assert set(blended_test["forecast_source"]) == {"pmdarima"}
    gap = parity_gap(blended_test, blended)
    assert all(g["max_rel"] < 1e-3 for g in gap.values()), gap
    spec = edge_spec(blended)
    starts = episode_starts(tiny_hourly["val"], tiny_hourly["test"])
    for sensor in blended["sensors"]:
        session = ort.InferenceSession(
            forecaster_to_onnx(blended, sensor).SerializeToString(),
            providers=["CPUExecutionProvider"],
        )
        grid, raw = _contiguous([tiny_hourly["val"], tiny_hourly["test"]], sensor)
        rows = blended_test[blended_test["sensor"] == sensor]
        for origin, group in rows.groupby("origin_hour"):
            state = origin_state(
                spec, sensor, grid, raw, int(origin), episode_start_for(starts, origin)
            )
            onnx = session.run(None, {"state": state})[0][0, group["step"].to_numpy() - 1]
            np.testing.assert_allclose(onnx, group["forecast_linear"].to_numpy(), rtol=1e-9)
            np.testing.assert_allclose(onnx, group["forecast"].to_numpy(), rtol=1e-3)


def test_no_state_or_naive_reaches_back_across_a_repair(blended, tiny_hourly, linear_params):
    before, target = tiny_hourly["val"], tiny_hourly["test"]
    starts = episode_starts(before, target)
    assert starts is not None and len(starts) >= 2
    bt = backtest_forecasters(blended, before, target, linear_params, "test")
    p_d = {s: sum(e["coefficients"]["order"][:2]) for s, e in blended["sensors"].items()}
    state_hours = int(blended["state_hours"])
    inside = []
    for (sensor, origin), group in bt.groupby(["sensor", "origin_hour"]):
        start = episode_start_for(starts, origin)
        assert start is None or origin - start >= p_d[sensor]
        if start is not None and start > origin - state_hours:
            inside.append((sensor, origin, start))
            grid, raw = _contiguous([before, target], sensor)
            episode = raw[(grid >= start) & (grid < origin)]
            assert group["naive"].iloc[0] == episode[np.isfinite(episode)][-1]
    assert inside, "no origin with a repair inside its state window"
    # the hours before each repair replaced by a failed machine's readings: same answers after it
    last_start = int(starts.max())
    changed_before, changed_target = before.copy(), target.copy()
    for sensor, entry in blended["sensors"].items():
        failed = 0.99 * entry["plausible_band"][1]
        changed_before[sensor] = failed
        changed_target.loc[changed_target["hour"] < last_start, sensor] = failed
    again = backtest_forecasters(blended, changed_before, changed_target, linear_params, "test")
    cols = ["forecast", "lower", "upper", "naive", "seasonal_naive"]
    after = bt["origin_hour"] > last_start
    again_after = again["origin_hour"] > last_start
    assert after.any()
    pd.testing.assert_frame_equal(
        bt.loc[after, cols].reset_index(drop=True),
        again.loc[again_after, cols].reset_index(drop=True),
    )


def test_metrics_report_the_mape_by_step_beside_the_baselines(blended, blended_test, fc_params):
    metrics = evaluate_forecasts(blended_test, blended_test, blended, fc_params)
    curves = metrics["diagnostics"]["per_step"]["test"]
    for sensor in blended["sensors"]:
        curve = curves[sensor]
        assert curve["step"] == list(range(1, 25))
        for name in ("forecast", "naive", "seasonal_naive", "level"):
            assert len(curve[name]) == 24 and np.isfinite(curve[name]).sum() >= 20
        # step 1's MAPE by hand
        part = blended_test[(blended_test["sensor"] == sensor) & (blended_test["step"] == 1)]
        floor = fc_params["mape_min_abs_fraction"] * blended["sensors"][sensor]["level"]
        part = part[part["actual"].abs() >= floor]
        expected = 100 * np.mean(np.abs(part["actual"] - part["forecast"]) / part["actual"].abs())
        assert curve["forecast"][0] == pytest.approx(expected)
    assert all(m["level_forecast"] is not None for m in metrics["metrics"])
