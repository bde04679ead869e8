"""Forecasting nodes on the tiny splits: hourly series, fit on train, honest backtest, metrics."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from pdm_kedro.core.arima import (
    forecast_matrix,
    interval_half_widths,
    linear_forecast,
)
from pdm_kedro.pipelines.forecasting.arima import inverse_ma_root
from pdm_kedro.pipelines.forecasting.nodes import (
    backtest_forecasters,
    evaluate_forecasts,
    fit_forecasters,
    forecast_errors,
    plot_forecasts,
    resample_hourly,
)

M = "motor_siemens_1la7_001"


def test_hourly_grid_is_contiguous_and_gaps_stay_missing(tiny_splits, tiny_hourly, machine):
    train = tiny_hourly["train"]
    assert list(train.columns) == [
        "hour",
        "timestamp",
        "episode_start_hour",
        *machine["forecast_sensors"],
    ]
    assert np.all(np.diff(train["hour"].to_numpy()) == 1)
    # repair gaps between episodes are hours without readings: NaN, never filled
    raw_hours = set(
        (pd.to_datetime(tiny_splits[0]["timestamp"]) - pd.Timestamp(0)) // pd.Timedelta(hours=1)
    )
    empty = ~train["hour"].isin(raw_hours)
    assert empty.any() and train.loc[empty, machine["forecast_sensors"]].isna().all().all()


def test_hourly_value_is_the_mean_of_that_hours_readings(tiny_splits, tiny_hourly, machine):
    sensor = machine["forecast_sensors"][0]
    raw = tiny_splits[2]
    first = raw.iloc[:2]
    assert first["timestamp"].iloc[1] - first["timestamp"].iloc[0] == pd.Timedelta(minutes=30)
    hour0 = tiny_hourly["test"].iloc[0]
    stamp = pd.Timestamp(first["timestamp"].iloc[0]).floor("h")
    same_hour = raw[pd.to_datetime(raw["timestamp"]).dt.floor("h") == stamp][sensor]
    assert hour0[sensor] == pytest.approx(same_hour.mean())


def test_linear_forecast_of_an_ar1_by_hand():
    coef = {
        "order": [1, 0, 0],
        "ar": [0.5],
        "ma": [],
        "intercept": 2.0,
        "beta": [0.0, 0.0],
        "sigma2": 1.0,
    }
    x = np.zeros((3, 2))
    out = linear_forecast(coef, np.array([10.0]), np.zeros(0), x[:1], x)
    np.testing.assert_allclose(out, [7.0, 5.5, 4.75])  # 2 + 0.5 * previous


def test_forecast_matrix_reproduces_the_recursion():
    coef = {
        "order": [2, 1, 1],
        "ar": [0.4, -0.2],
        "ma": [0.3],
        "intercept": 0.05,
        "beta": [1.0, -0.5, 0.2, 0.1],
        "sigma2": 2.0,
    }
    weights, bias = forecast_matrix(coef, 24, 4)
    rng = np.random.default_rng(0)
    y, e = rng.normal(50, 5, 3), rng.normal(0, 1, 1)
    xr, xf = rng.normal(size=(3, 4)), rng.normal(size=(24, 4))
    state = np.concatenate([y, e, xr.ravel(), xf.ravel()])
    np.testing.assert_allclose(state @ weights + bias, linear_forecast(coef, y, e, xr, xf))


def test_random_walk_intervals_grow_with_the_square_root_of_the_horizon():
    coef = {"order": [0, 1, 0], "ar": [], "ma": [], "intercept": 0.0, "beta": [], "sigma2": 4.0}
    half = interval_half_widths(coef, 24, 1.96)
    np.testing.assert_allclose(half, 1.96 * 2.0 * np.sqrt(np.arange(1, 25)))


def test_forecast_errors_by_hand():
    got = forecast_errors(np.array([100.0, 50.0, 1.0]), np.array([110.0, 45.0, 1.0]), 5.0, 10.0)
    assert got["mape"] == pytest.approx(10.0)  # the actual below 10 is skipped
    assert got["mae"] == pytest.approx(5.0) and got["mase"] == pytest.approx(1.0)
    assert got["smape"] == pytest.approx(200 / 3 * (10 / 210 + 5 / 95))


def test_fit_forecasters_artefact(tiny_forecaster, machine, fc_params):
    model = tiny_forecaster
    assert model["family"] == "forecasting" and model["machine_id"] == M
    assert list(model["sensors"]) == machine["forecast_sensors"]
    for entry in model["sensors"].values():
        coef = entry["coefficients"]
        assert coef["order"][1] == fc_params["arima"]["d"]
        assert coef["order"][2] <= fc_params["arima"]["max_q"]
        assert len(coef["beta"]) == 2 * fc_params["fourier"]["terms"]
        assert inverse_ma_root(entry["estimator"]) <= fc_params["arima"]["max_inverse_ma_root"]
        assert entry["fit"]["hours"] <= fc_params["history_hours"]
        assert entry["mase_scale"] > 0


def test_fit_is_deterministic(tiny_hourly, machine, fc_params, tiny_forecaster):
    again = fit_forecasters(tiny_hourly["train"], machine, fc_params)
    for sensor, entry in tiny_forecaster["sensors"].items():
        assert again["sensors"][sensor]["coefficients"] == entry["coefficients"]


def test_backtest_uses_only_observations_before_each_origin(
    tiny_forecaster, tiny_hourly, fc_params, tiny_backtest
):
    origin = int(sorted(tiny_backtest["origin_hour"].unique())[3])
    test = tiny_hourly["test"].copy()
    later = test["hour"] >= origin
    sensors = list(tiny_forecaster["sensors"])
    test.loc[later, sensors] = test.loc[later, sensors] * 3.0 + 100.0  # the future changes
    changed = backtest_forecasters(tiny_forecaster, tiny_hourly["val"], test, fc_params, "test")
    cols = ["forecast", "forecast_linear", "naive", "seasonal_naive", "lower", "upper"]
    before = tiny_backtest[tiny_backtest["origin_hour"] <= origin].reset_index(drop=True)
    after = changed[changed["origin_hour"] <= origin].reset_index(drop=True)
    pd.testing.assert_frame_equal(before[cols], after[cols])
    assert not np.allclose(before["actual"], after["actual"])  # only the scored actuals moved


def test_backtest_origins_and_baselines(tiny_backtest, tiny_hourly, fc_params):
    bt = tiny_backtest
    first, last = tiny_hourly["test"]["hour"].iloc[[0, -1]]
    assert bt["target_hour"].between(first, last).all() and bt["actual"].notna().all()
    assert ((bt["origin_hour"] - first) % fc_params["origin_step_hours"] == 0).all()
    assert bt["step"].between(1, fc_params["horizon_hours"]).all()
    assert (bt["forecast_source"] == "pmdarima").all()
    assert (bt["lower"] < bt["forecast"]).all() and (bt["forecast"] < bt["upper"]).all()
    # naive: one value per origin; seasonal naive: the value 24 h before the target
    assert (bt.groupby(["sensor", "origin_hour"])["naive"].nunique() == 1).all()
    hourly = pd.concat([tiny_hourly["val"], tiny_hourly["test"]]).set_index("hour")
    for sensor, part in bt.groupby("sensor"):
        day_before = hourly[sensor].reindex(part["target_hour"] - 24).to_numpy()
        known = np.isfinite(day_before)
        assert known.mean() > 0.5
        close = np.isclose(part["seasonal_naive"].to_numpy()[known], day_before[known])
        assert close.mean() > 0.98  # the rest: hours outside the plausible band -> naive


def test_metrics_follow_the_family_contract(tiny_backtest, tiny_forecaster, fc_params):
    metrics = evaluate_forecasts(tiny_backtest, tiny_backtest, tiny_forecaster, fc_params)
    json.dumps(metrics)
    assert metrics["family"] == "forecasting" and metrics["split"] == "test"
    assert metrics["n_rows"] == len(tiny_backtest)
    names = {m["metric"] for m in metrics["metrics"]}
    for sensor in tiny_forecaster["sensors"]:
        assert {f"mape[{sensor}]", f"smape[{sensor}]", f"mase[{sensor}]"} <= names
    for m in metrics["metrics"]:
        assert {"metric", "value", "baseline", "baseline_name"} <= set(m)
        assert np.isfinite(m["value"]) and np.isfinite(m["baseline"])
        # the baseline is the better of naive and seasonal naive, both reported beside
        assert m["baseline"] == min(m["baseline_naive"], m["baseline_seasonal_naive"])
        expected = (
            "seasonal_naive"
            if m["baseline_seasonal_naive"] < m["baseline_naive"]
            else "naive_last_value"
        )
        assert m["baseline_name"] == expected
    parity = metrics["diagnostics"]["onnx_parity_test"]
    assert all(p["max_rel"] < 1e-6 for p in parity.values())


def test_plot_has_a_forecast_and_an_error_curve_panel_per_key_sensor(
    tiny_backtest, tiny_forecaster, fc_params
):
    fig = plot_forecasts(tiny_backtest, tiny_forecaster, fc_params)
    assert len(fig.axes) == 2 * len(tiny_forecaster["sensors"])
    curves = [ax for ax in fig.axes if ax.get_ylabel() == "test MAPE (%)"]
    assert len(curves) == len(tiny_forecaster["sensors"])
    assert all(len(ax.get_lines()) == 4 for ax in curves)  # forecast, naive, seasonal, level


def test_machine_without_key_sensors_fails_clearly(tiny_splits, machine):
    with pytest.raises(ValueError, match="no forecast_sensors"):
        resample_hourly(tiny_splits[0], {**machine, "forecast_sensors": []})
