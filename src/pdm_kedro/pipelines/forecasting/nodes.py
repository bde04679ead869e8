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
    arima_half_widths,
    blend,
    blend_weights,
    clip_to_range,
    edge_spec,
    episode_start_for,
    forecast_matrix,
    fourier_terms,
    interval_half_widths,
    level_forecast,
    origin_state,
    screen_hourly,
)
from pdm_kedro.fleet import parse_machine
from pdm_kedro.promotion import score_both

from .arima import (
    HOUR,
    episode_starts,
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
    "level",
]
NAIVE = "naive_last_value"
SEASONAL_NAIVE = "seasonal_naive"
REFERENCES = ("naive", "seasonal_naive", "level")


def resample_hourly(validated: pd.DataFrame, machine: dict[str, Any]) -> pd.DataFrame:
    """Hourly means of the machine's key sensors (``forecast_sensors``) on a contiguous hour grid.

    Quarantined rows are already gone from ``validated``; hours without a finite reading (missing
    readings, quarantined rows, repair gaps between episodes) are NaN, never filled. The column
    ``episode_start_hour`` marks the hour each episode (a repair) starts: the backtest's state
    does not reach back across it.
    """
    spec = parse_machine(machine)
    if not spec.forecast_sensors:
        raise ValueError(f"machine {spec.machine_id}: no forecast_sensors configured")
    episode = c.EPISODE if c.EPISODE in validated.columns else None
    return hourly_frame(validated, c.TIMESTAMP, list(spec.forecast_sensors), episode)


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


def fit_level(hours: np.ndarray, values: np.ndarray, fourier: dict[str, Any]) -> dict[str, Any]:
    """The long-run daily-cycle level: least squares of the finite hourly values on
    ``[1, Fourier terms]``; ``sigma`` is the residual standard deviation."""
    ok = np.isfinite(values)
    if ok.sum() < 2:
        raise ValueError("fewer than two finite hourly values to fit a level")
    x = fourier_terms(np.asarray(hours)[ok], fourier["period_hours"], fourier["terms"])
    design = np.column_stack([np.ones(int(ok.sum())), x])
    coef, *_ = np.linalg.lstsq(design, values[ok], rcond=None)
    resid = values[ok] - design @ coef
    return {
        "intercept": float(coef[0]),
        "beta": [float(b) for b in coef[1:]],
        "sigma": float(np.sqrt(np.mean(resid**2))),
    }


def fit_forecasters(
    hourly_train: pd.DataFrame, machine: dict[str, Any], forecasting: dict[str, Any]
) -> dict[str, Any]:
    """Fit one ARIMA with Fourier daily-cycle regressors per key sensor, on train only.

    The fit uses the last ``history_hours`` hourly values of train (fit-time cap; missing hours
    inside that window interpolated for pmdarima only) after the plausible-band screening.

    Beside the ARIMA the coefficients hold the sensor's long-run daily-cycle ``level`` (fit on
    every screened train hour), ``decay`` = 1 (plain ARIMA; :func:`choose_forecasters` picks the
    mean reversion on val) and the ``physical_range`` ``[min, max]`` of the machine config.

    Returns:
        the forecasting model artefact: ``{"family": "forecasting", "machine_id", "sensors":
        {sensor: {"estimator", "coefficients", "plausible_band", "mase_scale", "level", "fit"}},
        "horizon_hours", "state_hours", "fourier", "interval_alpha", "interval_z"}``.
    """
    spec = parse_machine(machine)
    ranges = {s.name: [float(s.min), float(s.max)] for s in spec.sensors}
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
        coefficients = linear_coefficients(estimator) | {
            "level": fit_level(hours, values, fourier),
            "decay": 1.0,
            "physical_range": ranges[sensor],
        }
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
    one in time), starting at the running episode's first hour when a repair lies inside that
    window (no state across a repair; an origin at an episode's first hour has no state and is
    skipped), then ``horizon_hours`` are forecast. ``forecast_linear`` is what the ONNX graph and
    the edge compute (:mod:`pdm_kedro.core.arima`: the linear recursion blended with the level,
    clipped to the physical range). For the splits in ``native_forecast_splits`` (test),
    ``forecast``/``lower``/``upper`` blend pmdarima's own model (its statsmodels Kalman filter over
    the same window, coefficients fixed, no refit) and its intervals with the level in the same
    way at every origin; elsewhere they are the linear recursion and its steady-state intervals
    (``forecast_source`` says which). Naive = last finite value of the running episode before the
    origin; seasonal naive = the value ``period_hours`` before the target (naive when that hour is
    missing or before the episode start); ``level`` = the long-run daily-cycle level. Only target
    hours inside the split with a finite actual are kept.
    """
    spec = edge_spec(model)
    horizon = int(model["horizon_hours"])
    state_hours = int(model["state_hours"])
    fourier = model["fourier"]
    period = int(fourier["period_hours"])
    n_fourier = 2 * int(fourier["terms"])
    z_value = float(model["interval_z"])
    step = int(forecasting["origin_step_hours"])
    use_native = split in set(forecasting["native_forecast_splits"])
    starts = episode_starts(hourly_before, hourly_target)
    first, last = int(hourly_target[HOUR].iloc[0]), int(hourly_target[HOUR].iloc[-1])
    columns: dict[str, list[np.ndarray]] = {}  # one frame at the end, not one per origin
    with threadpool_limits(limits=int(forecasting["arima"]["blas_threads"])):
        for sensor, entry in model["sensors"].items():
            coef = entry["coefficients"]
            weights, bias = forecast_matrix(coef, horizon, n_fourier)
            half = interval_half_widths(coef, horizon, z_value)
            arima_half = arima_half_widths(coef, horizon, z_value)
            grid, raw = _contiguous([hourly_before, hourly_target], sensor)
            clean = screen_hourly(raw, entry["plausible_band"])
            for origin in range(first, last + 1, step):
                targets = np.arange(origin, origin + horizon, dtype=np.int64)
                in_split = targets <= last
                actual = np.full(horizon, np.nan)
                actual[in_split] = raw[targets[in_split] - grid[0]]
                if not np.isfinite(actual).any():
                    continue
                episode_start = episode_start_for(starts, origin)
                state = origin_state(spec, sensor, grid, raw, origin, episode_start)
                if state is None:
                    continue
                mean_linear = (state @ weights + bias)[0]
                linear = clip_to_range(coef, mean_linear)
                x_future = fourier_terms(targets, period, fourier["terms"])
                if use_native:
                    y_window, x_window = window_for_origin(
                        grid, clean, origin, state_hours, fourier, episode_start
                    )
                    native, native_lower, _ = native_forecast(
                        entry["estimator"], y_window, x_window, x_future, model["interval_alpha"]
                    )
                    mean = blend(coef, native, x_future)
                    w = blend_weights(coef, horizon)
                    # w_h * native half-width + (1 - w_h) * the level's, as the linear graph does
                    spread = half - w * arima_half + w * (native - native_lower)
                else:
                    mean, spread = mean_linear, half
                lower = clip_to_range(coef, mean - spread)
                upper = clip_to_range(coef, mean + spread)
                mean = clip_to_range(coef, mean)
                lo = (
                    origin - state_hours
                    if episode_start is None
                    else max(origin - state_hours, episode_start)
                )
                before = clean[max(0, lo - grid[0]) : origin - grid[0]]
                naive = float(before[np.isfinite(before)][-1])
                seasonal_hours = targets - period
                seasonal = clean[seasonal_hours - grid[0]]
                if episode_start is not None:
                    seasonal = np.where(seasonal_hours >= episode_start, seasonal, np.nan)
                seasonal = np.where(np.isfinite(seasonal), seasonal, naive)
                keep = np.isfinite(actual)
                origin_columns = {
                    "sensor": np.full(horizon, sensor, dtype=object),
                    "origin_hour": np.full(horizon, origin, dtype=np.int64),
                    "step": np.arange(1, horizon + 1),
                    "target_hour": targets,
                    "actual": actual,
                    "forecast": mean,
                    "lower": lower,
                    "upper": upper,
                    "forecast_linear": linear,
                    "naive": np.full(horizon, naive),
                    "seasonal_naive": seasonal,
                    "level": level_forecast(coef, x_future),
                }
                for name, values in origin_columns.items():
                    columns.setdefault(name, []).append(values[keep])
    if not columns:
        raise ValueError(f"{model['machine_id']}: no {split} backtest origin with data")
    out = pd.DataFrame({name: np.concatenate(parts) for name, parts in columns.items()})
    out[c.TIMESTAMP] = pd.to_datetime(out["target_hour"], unit="h")
    out["forecast_source"] = "pmdarima" if use_native else "linear"
    return out[BACKTEST_COLUMNS]


def decay_grid(blend_params: dict[str, Any]) -> np.ndarray:
    """The candidate decays ``start, start + step, ..., stop`` (descending: ties keep the
    larger decay, the forecast closer to the plain ARIMA)."""
    start, stop, step = (float(blend_params[k]) for k in ("start", "stop", "step"))
    if not (0.0 <= start <= stop <= 1.0 and step > 0):
        raise ValueError(
            f"forecasting.blend.decay_grid: need 0 <= start <= stop <= 1 and step > 0, got "
            f"start={start}, stop={stop}, step={step}"
        )
    n = int(round((stop - start) / step))
    return np.round(np.linspace(stop, start, n + 1), 10)


def choose_forecasters(
    arima_forecasters: dict[str, Any],
    arima_backtest_val: pd.DataFrame,
    forecasting: dict[str, Any],
) -> dict[str, Any]:
    """Per key sensor, the mean reversion ``decay`` with the lowest MAPE on the val backtest.

    Reads only the val backtest of the plain ARIMA forecasters (``decay`` = 1): the blended
    forecast ``w_h * forecast + (1 - w_h) * level``, ``w_h = decay ** h``, is scored for every
    decay of ``blend.decay_grid`` (1 keeps the plain ARIMA: a sensor that follows its last value
    keeps it; a regime-driven one reverts to its daily-cycle level). Returns a new model artefact
    with the chosen decays and the val MAPE of every candidate under ``choice``.
    """
    grid = decay_grid(forecasting["blend"]["decay_grid"])
    fraction = float(forecasting["mape_min_abs_fraction"])
    sensors = {}
    for sensor, entry in arima_forecasters["sensors"].items():
        part = arima_backtest_val[arima_backtest_val["sensor"] == sensor]
        if part.empty:
            raise ValueError(
                f"{arima_forecasters['machine_id']}/forecasting: no val backtest rows for sensor "
                f"{sensor}: cannot choose its mean reversion"
            )
        a = part["actual"].to_numpy(dtype=np.float64)
        f = part["forecast"].to_numpy(dtype=np.float64)
        level = part["level"].to_numpy(dtype=np.float64)
        steps = part["step"].to_numpy(dtype=np.float64)
        floor = fraction * entry["level"]
        scores = {}
        for decay in grid:
            w = decay**steps
            scores[float(decay)] = forecast_errors(a, w * f + (1 - w) * level, 1.0, floor)["mape"]
        best = min(scores, key=lambda d: (scores[d], -d))
        sensors[sensor] = {
            **entry,
            "coefficients": {**entry["coefficients"], "decay": best},
            "choice": {
                "decay": best,
                "val_mape": scores[best],
                "val_mape_plain_arima": scores.get(1.0),
                "val_mape_by_decay": scores,
                "chosen_on": "val",
            },
        }
        logger.info(
            "%s/forecasting: %s mean reversion decay %.2f (val MAPE %.3f, plain ARIMA %s)",
            arima_forecasters["machine_id"],
            sensor,
            best,
            scores[best],
            scores.get(1.0),
        )
    return {**arima_forecasters, "sensors": sensors}


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
    """{sensor: {forecast|naive|seasonal_naive|level: errors}} plus coverage and counts."""
    out = {}
    fraction = float(forecasting["mape_min_abs_fraction"])
    for sensor, entry in model["sensors"].items():
        part = backtest[backtest["sensor"] == sensor]
        a = part["actual"].to_numpy()
        scale, floor = entry["mase_scale"], fraction * entry["level"]
        out[sensor] = {
            name: forecast_errors(a, part[name].to_numpy(), scale, floor)
            for name in ("forecast", *REFERENCES)
            if name in part
        }
        inside = (a >= part["lower"].to_numpy()) & (a <= part["upper"].to_numpy())
        out[sensor]["counts"] = {
            "origins": int(part["origin_hour"].nunique()),
            "pairs": len(part),
            "mape_skipped_pairs": int(np.sum(np.abs(a) < floor)),
            "interval_coverage": float(inside.mean()) if len(part) else float("nan"),
        }
    return out


def per_step_errors(
    backtest: pd.DataFrame, model: dict[str, Any], forecasting: dict[str, Any]
) -> dict[str, dict[str, list[float]]]:
    """MAPE by forecast step (1..H) per sensor, of the forecast beside naive, seasonal naive and
    the level: ``{sensor: {"step": [...], "forecast": [...], "naive": [...], ...}}`` (NaN where a
    step has no scored pair). Shows at which horizon a sensor's forecast stops beating naive."""
    fraction = float(forecasting["mape_min_abs_fraction"])
    horizon = int(model["horizon_hours"])
    out = {}
    for sensor, entry in model["sensors"].items():
        part = backtest[backtest["sensor"] == sensor]
        floor = fraction * entry["level"]
        steps, actual = part["step"].to_numpy(), part["actual"].to_numpy()
        curve: dict[str, list[float]] = {"step": list(range(1, horizon + 1))}
        for name in ("forecast", *REFERENCES):
            predicted = part[name].to_numpy()
            values = []
            for h in range(1, horizon + 1):
                at = steps == h
                a = actual[at]
                big = np.abs(a) >= floor
                err = np.abs(a[big] - predicted[at][big]) / np.abs(a[big])
                values.append(float(100.0 * err.mean()) if big.any() else float("nan"))
            curve[name] = values
        out[sensor] = curve
    return out


def evaluate_forecasts(
    backtest_val: pd.DataFrame,
    backtest_test: pd.DataFrame,
    model: dict[str, Any],
    forecasting: dict[str, Any],
) -> dict[str, Any]:
    """Test-split MAPE, sMAPE and MASE per key sensor beside the naive forecasts' figures.

    ``baseline`` is the better (lower) of the naive (last value) and the seasonal naive (the value
    24 h earlier) forecast on the same origins and targets, ``baseline_name`` says which; both are
    reported beside (``baseline_naive``, ``baseline_seasonal_naive``). Val figures are reported
    beside, and the MAPE by step (``diagnostics.per_step``) for test and val.
    """
    test = _split_metrics(backtest_test, model, forecasting)
    val = _split_metrics(backtest_val, model, forecasting)
    metrics = []
    for sensor, figures in test.items():
        for name in ("mape", "smape", "mase"):
            naive, seasonal = figures["naive"][name], figures["seasonal_naive"][name]
            seasonal_better = bool(seasonal < naive)
            metrics.append(
                {
                    "metric": f"{name}[{sensor}]",
                    "sensor": sensor,
                    "value": figures["forecast"][name],
                    "baseline": seasonal if seasonal_better else naive,
                    "baseline_name": SEASONAL_NAIVE if seasonal_better else NAIVE,
                    "baseline_naive": naive,
                    "baseline_seasonal_naive": seasonal,
                    "level_forecast": figures["level"][name] if "level" in figures else None,
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
            "per_step": {
                "test": per_step_errors(backtest_test, model, forecasting),
                "val": per_step_errors(backtest_val, model, forecasting),
            },
            "onnx_parity_test": parity_gap(backtest_test, model),
        },
        "model": {
            "sensors": {
                s: {
                    "order": e["coefficients"]["order"],
                    "with_intercept": bool(e["coefficients"]["intercept"] != 0.0),
                    "mase_scale": e["mase_scale"],
                    "plausible_band": e["plausible_band"],
                    "physical_range": e["coefficients"].get("physical_range"),
                    "decay": e["coefficients"].get("decay", 1.0),
                    "level": e["coefficients"].get("level"),
                    "choice": {
                        k: v for k, v in e.get("choice", {}).items() if k != "val_mape_by_decay"
                    },
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
            "blend": dict(forecasting["blend"]),
            "mase_definition": "MAE over all test (origin, step) pairs / mean |y_t - y_{t-1}| "
            "over consecutive finite hours of the training hourly series",
        },
        "threshold": None,
        "plots": ["forecast_vs_actual.png"],
    }


def plot_forecasts(
    backtest_test: pd.DataFrame, model: dict[str, Any], forecasting: dict[str, Any]
) -> Figure:
    """Per key sensor: forecast vs actual with the prediction interval over the first test days
    (left) and the test MAPE by step beside naive, seasonal naive and the level (right)."""
    sensors = list(model["sensors"])
    curves = per_step_errors(backtest_test, model, forecasting)
    fig = Figure(figsize=(15, 3.2 * len(sensors)))
    axes = fig.subplots(len(sensors), 2, squeeze=False, width_ratios=[3, 1])
    hours = int(forecasting["plot_days"]) * 24
    alpha = model["interval_alpha"]
    for ax, curve_ax, sensor in zip(axes[:, 0], axes[:, 1], sensors, strict=True):
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
                label="forecast (24 h from each origin)" if i == 0 else None,
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
        decay = model["sensors"][sensor]["coefficients"].get("decay", 1.0)
        ax.set_title(f"{model['machine_id']}: {sensor} (mean reversion decay {decay:.2f})")
        ax.legend(loc="upper left", fontsize=7)
        curve = curves[sensor]
        styles = {
            "forecast": ("tab:blue", "-", "forecast"),
            "naive": ("tab:orange", "--", "naive"),
            "seasonal_naive": ("tab:green", ":", "seasonal naive"),
            "level": ("tab:gray", "-.", "daily-cycle level"),
        }
        for name, (color, ls, label) in styles.items():
            curve_ax.plot(curve["step"], curve[name], color=color, ls=ls, lw=1.2, label=label)
        curve_ax.set_xlabel("step (hours ahead)")
        curve_ax.set_ylabel("test MAPE (%)")
        curve_ax.set_title(f"{sensor}: MAPE by step", fontsize=9)
        curve_ax.legend(fontsize=7)
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
