"""Forecasting family: hourly key-sensor series, ARIMA fit on train, rolling-origin backtest.

The fitted coefficients stay fixed after training: at each origin the model's state is rebuilt
from the observations before that origin only (no refit on val or test).
"""

from __future__ import annotations

import json
import logging
from statistics import NormalDist
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from threadpoolctl import threadpool_limits

from pdm_kedro import contract as c
from pdm_kedro.core.arima import (
    edge_spec,
    forecast_matrix,
    fourier_terms,
    interval_half_widths,
    origin_state,
    screen_hourly,
)
from pdm_kedro.fleet import parse_machine
from pdm_kedro.promotion import score_both

from .arima import (
    HOUR,
    fit_history,
    fit_invertible_arima,
    hourly_frame,
    linear_coefficients,
    native_forecast,
    window_for_origin,
)

logger = logging.getLogger(__name__)

BACKTEST_COLUMNS = [
    "sensor",
    "origin_hour",
    "step",
    "target_hour",
    c.TIMESTAMP,
    "actual",
    "forecast",
    "lower",
    "upper",
    "forecast_linear",
    "forecast_source",
    "naive",
    "seasonal_naive",
]
NAIVE = "naive_last_value"


def resample_hourly(validated: pd.DataFrame, machine: dict[str, Any]) -> pd.DataFrame:
    """Hourly means of the machine's key sensors (``forecast_sensors``) on a contiguous hour grid.

    Quarantined rows are already gone from ``validated``; hours without a finite reading (missing
    readings, quarantined rows, repair gaps between episodes) are NaN, never filled.
    """
    spec = parse_machine(machine)
    if not spec.forecast_sensors:
        raise ValueError(f"machine {spec.machine_id}: no forecast_sensors configured")
    return hourly_frame(validated, c.TIMESTAMP, list(spec.forecast_sensors))


def _one_step_naive_mae(values: np.ndarray) -> float:
    """In-sample MAE of the one-step naive forecast over consecutive finite hours (MASE scale)."""
    diffs = np.abs(np.diff(np.asarray(values, dtype=np.float64)))
    diffs = diffs[np.isfinite(diffs)]
    return float(diffs.mean()) if diffs.size else float("nan")


def _plausible_band(values: np.ndarray, band: dict[str, Any]) -> list[float]:
    """``[q_lo - widen * range, q_hi + widen * range]`` of the training hourly values."""
    finite = values[np.isfinite(values)]
    q_lo, q_hi = np.quantile(finite, [float(band["quantiles"][0]), float(band["quantiles"][1])])
    spread = float(q_hi - q_lo)
    return [float(q_lo - band["widen"] * spread), float(q_hi + band["widen"] * spread)]


def fit_forecasters(
    hourly_train: pd.DataFrame, machine: dict[str, Any], forecasting: dict[str, Any]
) -> dict[str, Any]:
    """Fit one ARIMA with Fourier daily-cycle regressors per key sensor, on train only.

    The fit uses the last ``history_hours`` hourly values of train (fit-time cap; missing hours
    inside that window interpolated for pmdarima only) after the plausible-band screening.

    Returns:
        the forecasting model artefact: ``{"family": "forecasting", "machine_id", "sensors":
        {sensor: {"estimator", "coefficients", "plausible_band", "mase_scale", "level", "fit"}},
        "horizon_hours", "state_hours", "fourier", "interval_alpha", "interval_z"}``.
    """
    spec = parse_machine(machine)
    fourier = forecasting["fourier"]
    hours = hourly_train[HOUR].to_numpy()
    sensors = {}
    for sensor in spec.forecast_sensors:
        raw = hourly_train[sensor].to_numpy(dtype=np.float64)
        band = _plausible_band(raw, forecasting["plausible_band"])
        values = screen_hourly(raw, band)
        h, y, filled = fit_history(hours, values, int(forecasting["history_hours"]))
        x = fourier_terms(h, fourier["period_hours"], fourier["terms"])
        estimator = fit_invertible_arima(y, x, forecasting["arima"])
        coefficients = linear_coefficients(estimator)
        finite = values[np.isfinite(values)]
        sensors[sensor] = {
            "estimator": estimator,
            "coefficients": coefficients,
            "plausible_band": band,
            "mase_scale": _one_step_naive_mae(values),
            "level": float(np.median(np.abs(finite))),
            "fit": {
                "hours": len(y),
                "first_hour": int(h[0]),
                "last_hour": int(h[-1]),
                "interpolated_hours": filled,
                "aic": float(estimator.aic()),
                "screened_hours": int(np.sum(np.isfinite(raw) & ~np.isfinite(values))),
            },
        }
        logger.info(
            "%s/forecasting: %s ARIMA%s on %d hours (aic %.1f)",
            spec.machine_id,
            sensor,
            tuple(coefficients["order"]),
            len(y),
            estimator.aic(),
        )
    alpha = float(forecasting["interval_alpha"])
    return {
        "family": "forecasting",
        "machine_id": spec.machine_id,
        "sensors": sensors,
        "horizon_hours": int(forecasting["horizon_hours"]),
        "state_hours": int(forecasting["state_hours"]),
        "fourier": {"period_hours": int(fourier["period_hours"]), "terms": int(fourier["terms"])},
        "interval_alpha": alpha,
        "interval_z": NormalDist().inv_cdf(1.0 - alpha / 2.0),
    }


def _contiguous(frames: list[pd.DataFrame], sensor: str) -> tuple[np.ndarray, np.ndarray]:
    """One contiguous hour grid over consecutive splits; hours between them are NaN."""
    hours = np.concatenate([f[HOUR].to_numpy(dtype=np.int64) for f in frames])
    values = np.concatenate([f[sensor].to_numpy(dtype=np.float64) for f in frames])
    grid = np.arange(hours.min(), hours.max() + 1, dtype=np.int64)
    out = np.full(len(grid), np.nan)
    out[hours - grid[0]] = values
    return grid, out


def backtest_forecasters(
    model: dict[str, Any],
    hourly_before: pd.DataFrame,
    hourly_target: pd.DataFrame,
    forecasting: dict[str, Any],
    split: str,
) -> pd.DataFrame:
    """Rolling-origin backtest over one split with the fitted coefficients fixed.

    Origins every ``origin_step_hours`` from the split's first hour; at each origin the state is
    rebuilt from the ``state_hours`` hours before it (the previous split included: it precedes this
    one in time), then ``horizon_hours`` are forecast. ``forecast_linear`` is the fixed linear
    recursion the ONNX graph and the edge run (:mod:`pdm_kedro.core.arima`). For the splits in
    ``native_forecast_splits`` (test), ``forecast``/``lower``/``upper`` are pmdarima's own model
    (its statsmodels Kalman filter over the same window, coefficients fixed, no refit) at every
    origin; elsewhere they are the linear recursion and its steady-state intervals
    (``forecast_source`` says which). Naive = last finite value before the origin; seasonal naive =
    the value ``period_hours`` before the target (naive when that hour is missing). Only target
    hours inside the split with a finite actual are kept.
    """
    spec = edge_spec(model)
    horizon = int(model["horizon_hours"])
    state_hours = int(model["state_hours"])
    fourier = model["fourier"]
    period = int(fourier["period_hours"])
    n_fourier = 2 * int(fourier["terms"])
    step = int(forecasting["origin_step_hours"])
    use_native = split in set(forecasting["native_forecast_splits"])
    first, last = int(hourly_target[HOUR].iloc[0]), int(hourly_target[HOUR].iloc[-1])
    rows = []
    with threadpool_limits(limits=int(forecasting["arima"]["blas_threads"])):
        for sensor, entry in model["sensors"].items():
            coef = entry["coefficients"]
            weights, bias = forecast_matrix(coef, horizon, n_fourier)
            half = interval_half_widths(coef, horizon, float(model["interval_z"]))
            grid, raw = _contiguous([hourly_before, hourly_target], sensor)
            clean = screen_hourly(raw, entry["plausible_band"])
            for origin in range(first, last + 1, step):
                targets = np.arange(origin, origin + horizon, dtype=np.int64)
                in_split = targets <= last
                actual = np.full(horizon, np.nan)
                actual[in_split] = raw[targets[in_split] - grid[0]]
                if not np.isfinite(actual).any():
                    continue
                state = origin_state(spec, sensor, grid, raw, origin)
                if state is None:
                    continue
                linear = (state @ weights + bias)[0]
                if use_native:
                    y_window, x_window = window_for_origin(
                        grid, clean, origin, state_hours, fourier
                    )
                    x_future = fourier_terms(targets, period, fourier["terms"])
                    mean, lower, upper = native_forecast(
                        entry["estimator"], y_window, x_window, x_future, model["interval_alpha"]
                    )
                else:
                    mean, lower, upper = linear, linear - half, linear + half
                before = clean[max(0, origin - state_hours - grid[0]) : origin - grid[0]]
                naive = float(before[np.isfinite(before)][-1])
                seasonal = clean[targets - period - grid[0]]
                seasonal = np.where(np.isfinite(seasonal), seasonal, naive)
                keep = np.isfinite(actual)
                rows.append(
                    pd.DataFrame(
                        {
                            "sensor": sensor,
                            "origin_hour": origin,
                            "step": np.arange(1, horizon + 1)[keep],
                            "target_hour": targets[keep],
                            c.TIMESTAMP: pd.to_datetime(targets[keep], unit="h"),
                            "actual": actual[keep],
                            "forecast": mean[keep],
                            "lower": lower[keep],
                            "upper": upper[keep],
                            "forecast_linear": linear[keep],
                            "forecast_source": "pmdarima" if use_native else "linear",
                            "naive": naive,
                            "seasonal_naive": seasonal[keep],
                        }
                    )
                )
    if not rows:
        raise ValueError(f"{model['machine_id']}: no {split} backtest origin with data")
    return pd.concat(rows, ignore_index=True)[BACKTEST_COLUMNS]


def parity_gap(backtest: pd.DataFrame, model: dict[str, Any]) -> dict[str, Any]:
    """Worst relative gap between the linear (ONNX) forecasts and pmdarima's on every origin.

    Relative to ``max(|native|, level)`` (``level``: the sensor's median training level), so
    forecasts crossing zero do not blow the ratio up.
    """
    out: dict[str, Any] = {}
    for sensor, entry in model["sensors"].items():
        part = backtest[
            (backtest["sensor"] == sensor) & (backtest["forecast_source"] == "pmdarima")
        ]
        if part.empty:
            out[sensor] = {"origins": 0, "max_rel": None}
            continue
        native = part["forecast"].to_numpy()
        rel = np.abs(part["forecast_linear"].to_numpy() - native) / np.maximum(
            np.abs(native), entry["level"]
        )
        worst = int(np.argmax(rel))
        out[sensor] = {
            "origins": int(part["origin_hour"].nunique()),
            "max_rel": float(rel[worst]),
            "worst_origin_hour": int(part["origin_hour"].iloc[worst]),
            "worst_step": int(part["step"].iloc[worst]),
        }
    return out


def forecast_errors(
    actual: np.ndarray, forecast: np.ndarray, mase_scale: float, mape_min_abs: float
) -> dict[str, float]:
    """MAPE and sMAPE (%), MASE and MAE of forecasts against actuals.

    MAPE skips actuals with ``|a| < mape_min_abs`` (sensor dropouts near zero); sMAPE is
    ``200 |a - f| / (|a| + |f|)``; MASE is the MAE divided by ``mase_scale`` (the in-sample
    one-step naive MAE on the training hourly series).
    """
    a = np.asarray(actual, dtype=np.float64)
    f = np.asarray(forecast, dtype=np.float64)
    err = np.abs(a - f)
    big = np.abs(a) >= mape_min_abs
    denom = np.abs(a) + np.abs(f)
    nz = denom > 0
    return {
        "mape": float(100.0 * np.mean(err[big] / np.abs(a[big]))) if big.any() else float("nan"),
        "smape": float(200.0 * np.mean(err[nz] / denom[nz])) if nz.any() else float("nan"),
        "mase": float(err.mean() / mase_scale),
        "mae": float(err.mean()),
    }


def _split_metrics(
    backtest: pd.DataFrame, model: dict[str, Any], forecasting: dict[str, Any]
) -> dict[str, dict[str, dict[str, float]]]:
    """{sensor: {forecast|naive|seasonal_naive: errors}} plus coverage and counts."""
    out = {}
    fraction = float(forecasting["mape_min_abs_fraction"])
    for sensor, entry in model["sensors"].items():
        part = backtest[backtest["sensor"] == sensor]
        a = part["actual"].to_numpy()
        scale, floor = entry["mase_scale"], fraction * entry["level"]
        out[sensor] = {
            name: forecast_errors(a, part[name].to_numpy(), scale, floor)
            for name in ("forecast", "naive", "seasonal_naive")
        }
        inside = (a >= part["lower"].to_numpy()) & (a <= part["upper"].to_numpy())
        out[sensor]["counts"] = {
            "origins": int(part["origin_hour"].nunique()),
            "pairs": len(part),
            "mape_skipped_pairs": int(np.sum(np.abs(a) < floor)),
            "interval_coverage": float(inside.mean()) if len(part) else float("nan"),
        }
    return out


def evaluate_forecasts(
    backtest_val: pd.DataFrame,
    backtest_test: pd.DataFrame,
    model: dict[str, Any],
    forecasting: dict[str, Any],
) -> dict[str, Any]:
    """Test-split MAPE, sMAPE and MASE per key sensor beside the naive forecasts' figures.

    ``baseline`` is the naive (last value) forecast on the same origins and targets;
    ``baseline_seasonal_naive`` the value 24 h earlier. Val figures are reported beside.
    """
    test = _split_metrics(backtest_test, model, forecasting)
    val = _split_metrics(backtest_val, model, forecasting)
    metrics = []
    for sensor, figures in test.items():
        for name in ("mape", "smape", "mase"):
            metrics.append(
                {
                    "metric": f"{name}[{sensor}]",
                    "sensor": sensor,
                    "value": figures["forecast"][name],
                    "baseline": figures["naive"][name],
                    "baseline_name": NAIVE,
                    "baseline_seasonal_naive": figures["seasonal_naive"][name],
                }
            )
    return {
        "machine_id": model["machine_id"],
        "family": "forecasting",
        "split": "test",
        "tracked_by_family": True,  # logs its own MLflow metrics (mlflow_metrics output)
        "n_rows": len(backtest_test),
        "metrics": metrics,
        "val_metrics": {
            f"{name}[{sensor}]": figures["forecast"][name]
            for sensor, figures in val.items()
            for name in ("mape", "smape", "mase")
        },
        "diagnostics": {
            "test": {
                s: f["counts"]
                | {
                    "mae": f["forecast"]["mae"],
                    "mae_naive": f["naive"]["mae"],
                    "mae_seasonal_naive": f["seasonal_naive"]["mae"],
                }
                for s, f in test.items()
            },
            "val": {s: f["counts"] for s, f in val.items()},
            "onnx_parity_test": parity_gap(backtest_test, model),
        },
        "model": {
            "sensors": {
                s: {
                    "order": e["coefficients"]["order"],
                    "with_intercept": bool(e["coefficients"]["intercept"] != 0.0),
                    "mase_scale": e["mase_scale"],
                    "plausible_band": e["plausible_band"],
                    **e["fit"],
                }
                for s, e in model["sensors"].items()
            },
            "horizon_hours": model["horizon_hours"],
            "state_hours": model["state_hours"],
            "fourier": model["fourier"],
            "interval_alpha": model["interval_alpha"],
            "history_hours": int(forecasting["history_hours"]),
            "origin_step_hours": int(forecasting["origin_step_hours"]),
            "arima": dict(forecasting["arima"]),
            "mase_definition": "MAE over all test (origin, step) pairs / mean |y_t - y_{t-1}| "
            "over consecutive finite hours of the training hourly series",
        },
        "threshold": None,
        "plots": ["forecast_vs_actual.png"],
    }


def plot_forecasts(
    backtest_test: pd.DataFrame, model: dict[str, Any], forecasting: dict[str, Any]
) -> Figure:
    """Forecast vs actual with the prediction interval over the first test days, per key sensor."""
    sensors = list(model["sensors"])
    fig = Figure(figsize=(11, 3.2 * len(sensors)))
    axes = fig.subplots(len(sensors), 1, squeeze=False)
    hours = int(forecasting["plot_days"]) * 24
    alpha = model["interval_alpha"]
    for ax, sensor in zip(axes[:, 0], sensors, strict=True):
        part = backtest_test[backtest_test["sensor"] == sensor]
        start = part["target_hour"].min()
        part = part[part["target_hour"] < start + hours]
        ax.plot(part[c.TIMESTAMP], part["actual"], color="black", lw=1, label="actual (hourly)")
        for i, (_, origin) in enumerate(part.groupby("origin_hour")):
            ax.plot(
                origin[c.TIMESTAMP],
                origin["forecast"],
                color="tab:blue",
                lw=1.2,
                label="ARIMA forecast (24 h from each origin)" if i == 0 else None,
            )
            ax.fill_between(
                origin[c.TIMESTAMP],
                origin["lower"],
                origin["upper"],
                color="tab:blue",
                alpha=0.15,
                label=f"{100 * (1 - alpha):.0f} % interval" if i == 0 else None,
            )
            ax.plot(
                origin[c.TIMESTAMP],
                origin["naive"],
                color="tab:orange",
                lw=0.8,
                ls="--",
                label="naive (last value)" if i == 0 else None,
            )
        ax.set_title(f"{model['machine_id']}: {sensor}")
        ax.legend(loc="upper left", fontsize=7)
    fig.tight_layout()
    return fig


def promotion_metrics(
    backtest: pd.DataFrame, model: dict[str, Any], forecasting: dict[str, Any]
) -> dict[str, float]:
    """Mean MAPE over the key sensors and the mean interval coverage error
    (|coverage - nominal|) of one forecaster's test backtest."""
    figures = _split_metrics(backtest, model, forecasting)
    mapes = [f["forecast"]["mape"] for f in figures.values() if np.isfinite(f["forecast"]["mape"])]
    nominal = 1.0 - float(model["interval_alpha"])
    gaps = [
        abs(f["counts"]["interval_coverage"] - nominal)
        for f in figures.values()
        if np.isfinite(f["counts"]["interval_coverage"])
    ]
    return {
        "mape": float(np.mean(mapes)) if mapes else float("nan"),
        "coverage_error": float(np.mean(gaps)) if gaps else float("nan"),
    }


def score_for_promotion(
    challenger: dict[str, Any],
    champion: dict[str, Any] | None,
    backtest_test: pd.DataFrame,
    hourly_val: pd.DataFrame,
    hourly_test: pd.DataFrame,
    forecasting: dict[str, Any],
) -> dict[str, Any]:
    """Challenger (its test backtest of this run) and champion (backtested again over the same
    test hours, state from the hours before each origin) on the same evaluation data."""

    def score(model: dict[str, Any]) -> dict[str, float]:
        backtest = backtest_forecasters(model, hourly_val, hourly_test, forecasting, split="test")
        return promotion_metrics(backtest, model, forecasting)

    reuse = promotion_metrics(backtest_test, challenger["model"], forecasting)
    return score_both(challenger, champion, hourly_test, score, challenger_scores=reuse)


def production_backtest(
    production_model: dict[str, Any],
    trained: dict[str, Any],
    backtest_test: pd.DataFrame,
    hourly_val: pd.DataFrame,
    hourly_test: pd.DataFrame,
    forecasting: dict[str, Any],
) -> pd.DataFrame:
    """The test backtest of the production forecaster (``production_model``: the package the
    promotion decision kept): this run's when the production model is the one trained in this
    run, else the champion's, computed again over the same test hours. The edge export checks
    ONNX parity against it."""
    production = production_model["model"]
    if production is trained or _same_coefficients(production, trained):
        return backtest_test
    logger.info(
        "%s/forecasting: the champion is not this run's model: backtesting it for parity",
        production.get("machine_id"),
    )
    return backtest_forecasters(production, hourly_val, hourly_test, forecasting, split="test")


def _same_coefficients(a: dict[str, Any], b: dict[str, Any]) -> bool:
    try:
        return (
            set(a["sensors"]) == set(b["sensors"])
            and all(
                json.dumps(a["sensors"][s]["coefficients"], sort_keys=True, default=str)
                == json.dumps(b["sensors"][s]["coefficients"], sort_keys=True, default=str)
                and a["sensors"][s]["plausible_band"] == b["sensors"][s]["plausible_band"]
                for s in a["sensors"]
            )
            and all(a.get(k) == b.get(k) for k in ("horizon_hours", "state_hours", "fourier"))
        )
    except (KeyError, TypeError):
        return False
