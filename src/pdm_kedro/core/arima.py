"""The ARIMA maths shared by training, the backtest, the ONNX export and the edge runtime:
hourly resampling, Fourier terms, the ARIMA state and the linear forecast recursion.

numpy only (no pandas, pmdarima, statsmodels or kedro), so the edge runtime imports it too
(:mod:`pdm_kedro.edge.forecast` answers from raw readings with it). Training
(`pdm_kedro.pipelines.forecasting`) and the edge share one definition of the hourly series, the
Fourier terms and the residual recursion.

Conventions (also written into the edge spec by :func:`edge_spec`):

- time: an hour index is ``floor(timestamp_ns / 3.6e12)``, i.e. whole hours since
  1970-01-01T00:00 of the (timezone-naive) timestamps;
- hourly series: the mean of the finite readings whose timestamp falls in ``[hour, hour + 1)``;
  an hour without a finite reading is missing (NaN);
- Fourier terms of hour ``t``: ``sin(2 pi k (t mod P) / P), cos(2 pi k (t mod P) / P)`` for
  ``k = 1..K`` (columns in that order);
- model: regression with ARIMA(p, d, q) errors, ``z_t = y_t - x_t . beta``,
  ``w_t = (1 - L)^d z_t``, ``w_t = c + sum_i ar_i w_{t-i} + e_t + sum_j ma_j e_{t-j}``;
- state: the ``state_hours`` hours before the origin, leading missing hours trimmed. Pure AR
  models (q = 0, the default): missing hours take their conditional expectation given every
  observation in the window (a least-squares fill that equals the Kalman filter's state); with MA
  terms: the residual recursion starts with zero residuals and pre-sample ``w`` at its mean
  ``c / (1 - sum ar)``, a missing hour takes its one-step prediction with a zero residual
  (approximate near gaps and window starts: the Kalman gain is not yet in steady state);
- mean reversion: the point forecast at step h is ``w_h * arima_h + (1 - w_h) * level_h`` with
  ``w_h = decay ** h`` and ``level_h = level.intercept + x_h . level.beta`` (the sensor's long-run
  daily-cycle level, a regression of the training hours on the Fourier terms); ``decay`` = 1 is
  the plain ARIMA forecast. Still an affine map of the state (the future Fourier terms are in it);
- intervals: half-width ``w_h * arima_half_h + (1 - w_h) * z * level.sigma``;
- physical range: forecast, lower and upper are clipped to the sensor's ``physical_range``
  ``[min, max]`` of the machine config (no negative current);
- episodes: the state window starts at the episode start (the first hour of the running episode,
  after a repair) when one lies inside it: the state does not carry across a repair;
- the ONNX graph of one sensor takes one float64 row ``state`` = ``[y_recent (p+d),
  residuals (q), fourier_recent ((p+d)*2K, row-major), fourier_future (H*2K, row-major)]`` and
  returns ``forecast``, ``lower`` and ``upper`` (H each; the interval half-widths are the
  steady-state ones, fixed by the coefficients, sigma2 and the level's sigma).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import numpy as np

HOUR_NS = 3_600_000_000_000
EPISODE_START_COLUMN = "episode_start_hour"  # hourly frames: the hour an episode (a repair) starts


def hour_index(timestamps: np.ndarray) -> np.ndarray:
    """Whole hours since 1970-01-01T00:00 of datetime64 (any unit) or int64-nanosecond timestamps."""
    ts = np.asarray(timestamps)
    if np.issubdtype(ts.dtype, np.datetime64):
        ns = ts.astype("datetime64[ns]").astype(np.int64)
    else:
        ns = ts.astype(np.int64)
    return np.floor_divide(ns, HOUR_NS)


def hourly_means(
    timestamps: np.ndarray,
    values: np.ndarray,
    first_hour: int | None = None,
    last_hour: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Resample readings to hourly means on a contiguous hour grid.

    Args:
        timestamps: reading times (datetime64 or int64 ns), any order.
        values: readings, shape (n,) or (n, sensors); NaN readings are ignored.
        first_hour, last_hour: grid bounds (hour indices, inclusive); default: the readings' span.

    Returns:
        ``hours`` (int64, contiguous) and the hourly means (NaN where an hour has no finite reading).
    """
    hours = hour_index(timestamps)
    vals = np.asarray(values, dtype=np.float64)
    squeeze = vals.ndim == 1
    vals = vals.reshape(len(hours), -1)
    lo = int(hours.min()) if first_hour is None else int(first_hour)
    hi = int(hours.max()) if last_hour is None else int(last_hour)
    grid = np.arange(lo, hi + 1, dtype=np.int64)
    keep = (hours >= lo) & (hours <= hi)
    pos = (hours[keep] - lo).astype(np.int64)
    out = np.full((len(grid), vals.shape[1]), np.nan)
    for j in range(vals.shape[1]):
        col = vals[keep, j]
        finite = np.isfinite(col)
        sums = np.bincount(pos[finite], weights=col[finite], minlength=len(grid))
        counts = np.bincount(pos[finite], minlength=len(grid))
        with np.errstate(invalid="ignore", divide="ignore"):
            out[:, j] = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
    return grid, (out[:, 0] if squeeze else out)


def screen_hourly(values: np.ndarray, band: Any) -> np.ndarray:
    """Hourly values outside the sensor's plausible ``[low, high]`` band become missing (NaN)."""
    vals = np.asarray(values, dtype=np.float64)
    if band is None:
        return vals
    low, high = float(band[0]), float(band[1])
    with np.errstate(invalid="ignore"):
        return np.where((vals < low) | (vals > high), np.nan, vals)


def fourier_terms(hours: np.ndarray, period_hours: int, terms: int) -> np.ndarray:
    """Daily-cycle regressors of hour indices: (n, 2K) sin/cos pairs, k = 1..K."""
    phase = np.mod(np.asarray(hours, dtype=np.int64), int(period_hours)) / float(period_hours)
    cols = []
    for k in range(1, int(terms) + 1):
        cols.append(np.sin(2.0 * np.pi * k * phase))
        cols.append(np.cos(2.0 * np.pi * k * phase))
    return np.column_stack(cols) if cols else np.zeros((len(phase), 0))


def _integration_weights(d: int) -> np.ndarray:
    """Coefficients a_i with z_t = w_t + sum_i a_i z_{t-i} for (1 - L)^d z_t = w_t."""
    poly = np.array([1.0])
    for _ in range(d):
        poly = np.convolve(poly, [1.0, -1.0])
    return -poly[1:]


def _w_mean(coef: Mapping[str, Any]) -> float:
    ar_sum = float(np.sum(coef["ar"]))
    return float(coef["intercept"]) / (1.0 - ar_sum) if abs(1.0 - ar_sum) > 1e-9 else 0.0


def _ar_polynomial(coef: Mapping[str, Any]) -> np.ndarray:
    """a_i of the integrated AR: z_t = c + sum_i a_i z_{t-i} + e_t, i = 1..p+d (q = 0)."""
    poly = np.concatenate([[1.0], -np.asarray(coef["ar"], dtype=np.float64)])
    for _ in range(int(coef["order"][1])):
        poly = np.convolve(poly, [1.0, -1.0])
    return -poly[1:]


def _ar_fill(z: np.ndarray, coef: Mapping[str, Any]) -> np.ndarray:
    """Missing values of a pure (integrated) AR series by their conditional expectation.

    For a Gaussian AR conditioned on the window's first p+d values the conditional mean of the
    missing values given every observation minimises the sum of squared one-step errors (a small
    least-squares problem): what the Kalman filter's state holds for the last p+d hours.
    """
    missing = np.flatnonzero(~np.isfinite(z))
    if not missing.size:
        return z
    a = _ar_polynomial(coef)
    k, n = len(a), len(z)
    c = float(coef["intercept"])
    rows = np.arange(k, n)
    design = np.zeros((len(rows), n))
    design[np.arange(len(rows)), rows] = 1.0
    for i in range(k):
        design[np.arange(len(rows)), rows - 1 - i] -= a[i]
    observed = np.isfinite(z)
    rhs = c - design[:, observed] @ z[observed]
    filled = z.copy()
    filled[missing] = np.linalg.lstsq(design[:, missing], rhs, rcond=None)[0]
    return filled


def arima_state(
    y: np.ndarray, x: np.ndarray, coef: Mapping[str, Any]
) -> tuple[np.ndarray, np.ndarray]:
    """Filled observations and residuals of a window by the model's one-step recursion.

    Args:
        y: hourly observations of the window, oldest first (NaN = missing; leading NaNs trimmed
            by the caller, the first value must be finite).
        x: Fourier terms of the same hours, (n, 2K).
        coef: the sensor's linear coefficients (``order``, ``ar``, ``ma``, ``intercept``, ``beta``).

    Returns:
        ``y_filled`` (missing hours replaced by their one-step prediction) and residuals ``e``
        (zero where the hour was missing). Without MA terms the missing hours take their
        conditional expectation given every observation of the window instead (see ``_ar_fill``),
        which reproduces the Kalman filter exactly.
    """
    p, d, q = (int(v) for v in coef["order"])
    ar = np.asarray(coef["ar"], dtype=np.float64)
    ma = np.asarray(coef["ma"], dtype=np.float64)
    c = float(coef["intercept"])
    xb = np.asarray(x, dtype=np.float64) @ np.asarray(coef["beta"], dtype=np.float64)
    z = np.asarray(y, dtype=np.float64) - xb
    n = len(z)
    if q == 0:  # pure AR: exact conditional expectation of missing hours (no residual state)
        return _ar_fill(z, coef) + xb, np.zeros(n)
    integ = _integration_weights(d)
    mu = _w_mean(coef)
    zf = np.empty(n)
    w = np.empty(n)
    e = np.zeros(n)
    for t in range(n):
        if t < d:  # not enough history to difference: keep the observation as the level
            zf[t] = z[t] if np.isfinite(z[t]) else (zf[t - 1] if t else 0.0)
            w[t] = mu
            continue
        w_hat = c
        for i in range(p):
            w_hat += ar[i] * (w[t - 1 - i] if t - 1 - i >= d else mu)
        for j in range(q):
            if t - 1 - j >= 0:
                w_hat += ma[j] * e[t - 1 - j]
        level = float(np.dot(integ, zf[t - d : t][::-1])) if d else 0.0
        z_hat = w_hat + level
        if np.isfinite(z[t]):
            zf[t] = z[t]
            e[t] = z[t] - z_hat
        else:
            zf[t] = z_hat
        w[t] = zf[t] - level
    return zf + xb, e


def linear_forecast(
    coef: Mapping[str, Any],
    y_recent: np.ndarray,
    e_recent: np.ndarray,
    x_recent: np.ndarray,
    x_future: np.ndarray,
) -> np.ndarray:
    """H-step forecast from the last p+d observations, the last q residuals and Fourier terms.

    The reference implementation of the ONNX graph (same recursion, float64, no ONNX).
    """
    p, d, q = (int(v) for v in coef["order"])
    ar = np.asarray(coef["ar"], dtype=np.float64)
    ma = np.asarray(coef["ma"], dtype=np.float64)
    beta = np.asarray(coef["beta"], dtype=np.float64)
    c = float(coef["intercept"])
    integ = _integration_weights(d)
    z = list(np.asarray(y_recent, dtype=np.float64) - np.asarray(x_recent, dtype=np.float64) @ beta)
    # w history of the last p steps from the last p+d z values
    w_hist = []
    for i in range(p):
        t = len(z) - 1 - i
        w_hist.append(z[t] - (float(np.dot(integ, np.asarray(z[t - d : t][::-1]))) if d else 0.0))
    w = list(reversed(w_hist))  # oldest first
    eps = list(np.asarray(e_recent, dtype=np.float64))
    horizon = len(x_future)
    out = np.empty(horizon)
    xb_future = np.asarray(x_future, dtype=np.float64) @ beta
    for h in range(horizon):
        w_hat = c
        for i in range(p):
            w_hat += ar[i] * w[len(w) - 1 - i]
        for j in range(q):
            k = len(eps) - 1 - j
            if k >= 0:
                w_hat += ma[j] * eps[k]
        level = float(np.dot(integ, np.asarray(z[len(z) - d :][::-1]))) if d else 0.0
        z_hat = w_hat + level
        z.append(z_hat)
        w.append(w_hat)
        eps.append(0.0)
        out[h] = z_hat + xb_future[h]
    return out


def state_layout(coef: Mapping[str, Any], horizon: int, n_fourier: int) -> dict[str, int]:
    """Sizes of the blocks of the ONNX ``state`` row (see the module docstring)."""
    p, d, q = (int(v) for v in coef["order"])
    return {
        "y_recent": p + d,
        "residuals": q,
        "fourier_recent": (p + d) * n_fourier,
        "fourier_future": horizon * n_fourier,
    }


def build_state_row(
    coef: Mapping[str, Any],
    y_filled: np.ndarray,
    residuals: np.ndarray,
    x_window: np.ndarray,
    x_future: np.ndarray,
) -> np.ndarray:
    """The (1, n) float64 ``state`` input of a sensor's ONNX graph from a window's recursion."""
    p, d, q = (int(v) for v in coef["order"])
    k = p + d
    parts = [
        np.asarray(y_filled[len(y_filled) - k :], dtype=np.float64) if k else np.zeros(0),
        np.asarray(residuals[len(residuals) - q :], dtype=np.float64) if q else np.zeros(0),
        np.asarray(x_window[len(x_window) - k :], dtype=np.float64).ravel() if k else np.zeros(0),
        np.asarray(x_future, dtype=np.float64).ravel(),
    ]
    return np.concatenate(parts)[None, :]


def _split_state(
    coef: Mapping[str, Any], state: np.ndarray, n_fourier: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The blocks of a ``state`` row: y_recent, residuals, fourier_recent, fourier_future."""
    p, d, q = (int(v) for v in coef["order"])
    k = p + d
    s = np.asarray(state, dtype=np.float64).ravel()
    y = s[:k]
    e = s[k : k + q]
    xr = s[k + q : k + q + k * n_fourier].reshape(k, n_fourier)
    xf = s[k + q + k * n_fourier :].reshape(-1, n_fourier)
    return y, e, xr, xf


def forecast_matrix(
    coef: Mapping[str, Any], horizon: int, n_fourier: int
) -> tuple[np.ndarray, np.ndarray]:
    """The point forecast (recursion blended with the level) as an affine map:
    ``forecast = state @ weights + bias`` (before clipping to the physical range).

    Exact because the recursion and the level are linear in the observations, residuals and
    Fourier terms.
    """
    sizes = state_layout(coef, horizon, n_fourier)
    n = sum(sizes.values())

    def run(state: np.ndarray) -> np.ndarray:
        return point_forecast(coef, *_split_state(coef, state, n_fourier))

    bias = run(np.zeros(n))
    weights = np.empty((n, horizon))
    for i in range(n):
        unit = np.zeros(n)
        unit[i] = 1.0
        weights[i] = run(unit) - bias
    return weights, bias


def arima_half_widths(coef: Mapping[str, Any], horizon: int, z_value: float) -> np.ndarray:
    """Steady-state half-widths ``z * sigma * sqrt(sum_{j<h} psi_j^2)`` of the ARIMA's h-step
    intervals."""
    p, d, q = (int(v) for v in coef["order"])
    ar_poly = np.concatenate([[1.0], -np.asarray(coef["ar"], dtype=np.float64)])
    for _ in range(d):
        ar_poly = np.convolve(ar_poly, [1.0, -1.0])
    ma = np.concatenate([[1.0], np.asarray(coef["ma"], dtype=np.float64)])
    psi = np.zeros(horizon)
    for j in range(horizon):
        val = ma[j] if j < len(ma) else 0.0
        for i in range(1, min(j, len(ar_poly) - 1) + 1):
            val -= ar_poly[i] * psi[j - i]
        psi[j] = val
    return z_value * np.sqrt(float(coef["sigma2"]) * np.cumsum(psi**2))


def blend_weights(coef: Mapping[str, Any], horizon: int) -> np.ndarray:
    """Weights ``w_h = decay ** h`` (h = 1..H) of the ARIMA forecast against the level."""
    decay = float(coef.get("decay", 1.0))
    return decay ** np.arange(1, int(horizon) + 1, dtype=np.float64)


def level_forecast(coef: Mapping[str, Any], x_future: np.ndarray) -> np.ndarray:
    """The sensor's long-run daily-cycle level at the future hours (zeros without a level)."""
    xf = np.asarray(x_future, dtype=np.float64)
    level = coef.get("level")
    if not level:
        return np.zeros(len(xf))
    return float(level["intercept"]) + xf @ np.asarray(level["beta"], dtype=np.float64)


def blend(
    coef: Mapping[str, Any],
    arima: np.ndarray,
    x_future: np.ndarray,
    steps: np.ndarray | None = None,
) -> np.ndarray:
    """``w_h * arima_h + (1 - w_h) * level_h`` for the steps (1-based; default 1..len(arima))."""
    a = np.asarray(arima, dtype=np.float64)
    steps = np.arange(1, len(a) + 1) if steps is None else np.asarray(steps, dtype=np.int64)
    w = float(coef.get("decay", 1.0)) ** steps.astype(np.float64)
    if np.all(w == 1.0):
        return a
    return w * a + (1.0 - w) * level_forecast(coef, x_future)


def point_forecast(
    coef: Mapping[str, Any],
    y_recent: np.ndarray,
    e_recent: np.ndarray,
    x_recent: np.ndarray,
    x_future: np.ndarray,
) -> np.ndarray:
    """The H-step point forecast: the ARIMA recursion blended with the level (unclipped)."""
    return blend(coef, linear_forecast(coef, y_recent, e_recent, x_recent, x_future), x_future)


def interval_half_widths(coef: Mapping[str, Any], horizon: int, z_value: float) -> np.ndarray:
    """Half-widths of the blended forecast's intervals:
    ``w_h * arima_half_h + (1 - w_h) * z * level.sigma`` (the ARIMA's alone when decay = 1)."""
    arima = arima_half_widths(coef, horizon, z_value)
    level = coef.get("level")
    if not level:
        return arima
    w = blend_weights(coef, horizon)
    return w * arima + (1.0 - w) * z_value * float(level["sigma"])


def clip_bounds(coef: Mapping[str, Any]) -> tuple[float, float]:
    """The sensor's physical range ``(min, max)`` (infinite where none is known)."""
    bounds = coef.get("physical_range")
    if not bounds:
        return -np.inf, np.inf
    lo, hi = bounds
    return (-np.inf if lo is None else float(lo)), (np.inf if hi is None else float(hi))


def clip_to_range(coef: Mapping[str, Any], values: np.ndarray) -> np.ndarray:
    """Values clipped to the sensor's physical range."""
    lo, hi = clip_bounds(coef)
    return np.clip(np.asarray(values, dtype=np.float64), lo, hi)


def episode_start_for(episode_starts: np.ndarray | None, origin_hour: int) -> int | None:
    """The start hour of the episode running at ``origin_hour``: the latest start <= the origin
    (None when no start is known)."""
    if episode_starts is None:
        return None
    starts = np.asarray(episode_starts, dtype=np.int64)
    starts = starts[starts <= int(origin_hour)]
    return int(starts.max()) if starts.size else None


def origin_state(
    spec: Mapping[str, Any],
    sensor: str,
    hours: np.ndarray,
    hourly: np.ndarray,
    origin_hour: int,
    episode_start: int | None = None,
) -> np.ndarray | None:
    """The ONNX ``state`` row of one sensor at an origin from its hourly series (None: no data,
    or fewer than p + d hours from the first finite one to the origin).

    Uses the ``state_hours`` hours before ``origin_hour`` (``hours`` must be contiguous), from
    ``episode_start`` on when that hour lies inside the window (the state does not carry across a
    repair); hourly values outside the sensor's ``plausible_band`` are missing.
    """
    coef = spec["sensors"][sensor]
    hourly = screen_hourly(hourly, coef.get("plausible_band"))
    fourier = spec["fourier"]
    horizon = int(spec["horizon_hours"])
    state_hours = int(spec["state_hours"])
    hours = np.asarray(hours, dtype=np.int64)
    start = origin_hour - state_hours
    window = np.full(state_hours, np.nan)
    first_hour = start if episode_start is None else max(start, int(episode_start))
    lo, hi = max(first_hour, int(hours[0])), min(origin_hour - 1, int(hours[-1]))
    if hi >= lo:
        window[lo - start : hi - start + 1] = hourly[lo - int(hours[0]) : hi - int(hours[0]) + 1]
    finite = np.flatnonzero(np.isfinite(window))
    if not finite.size:
        return None
    first = int(finite[0])
    p, d, _ = (int(v) for v in coef["order"])
    if state_hours - first < p + d:  # fewer hours than the recursion's memory (a new episode)
        return None
    window_hours = np.arange(start + first, origin_hour, dtype=np.int64)
    x_window = fourier_terms(window_hours, fourier["period_hours"], fourier["terms"])
    y_filled, residuals = arima_state(window[first:], x_window, coef)
    future = np.arange(origin_hour, origin_hour + horizon, dtype=np.int64)
    x_future = fourier_terms(future, fourier["period_hours"], fourier["terms"])
    return build_state_row(coef, y_filled, residuals, x_window, x_future)


def edge_spec(model_artifact: dict[str, Any]) -> dict[str, Any]:
    """Everything the edge needs to forecast from raw readings (JSON-able).

    Sensor names and their coefficients (order, AR, MA, intercept, Fourier betas, sigma2, the
    level and decay of the mean reversion, the physical range, plausible band), Fourier period
    and K, horizon, the state window and the conventions of
    :mod:`pdm_kedro.core.arima` (time origin, hourly means, residual recursion).
    """
    sensors = {
        sensor: {
            **{k: _plain(v) for k, v in entry["coefficients"].items()},
            "plausible_band": _plain(entry["plausible_band"]),
            "state_layout": state_layout(
                entry["coefficients"],
                int(model_artifact["horizon_hours"]),
                2 * int(model_artifact["fourier"]["terms"]),
            ),
        }
        for sensor, entry in model_artifact["sensors"].items()
    }
    spec = {
        "family": "forecasting",
        "machine_id": model_artifact["machine_id"],
        "horizon_hours": int(model_artifact["horizon_hours"]),
        "state_hours": int(model_artifact["state_hours"]),
        "fourier": {k: int(v) for k, v in model_artifact["fourier"].items()},
        "interval_alpha": float(model_artifact["interval_alpha"]),
        "interval_z": float(model_artifact["interval_z"]),
        "sensors": sensors,
        "conventions": {
            "time_origin": "hour index = floor(timestamp_ns / 3.6e12): whole hours since "
            "1970-01-01T00:00 of timezone-naive timestamps",
            "resample": "hourly mean of the finite readings in [hour, hour + 1); no reading -> "
            "missing; hourly values outside plausible_band -> missing",
            "state": "the state_hours hours before the origin (from the episode start when one "
            "lies inside that window: no state across a repair), leading missing hours trimmed; "
            "residuals by the one-step recursion from zero residuals and pre-sample w at its mean; "
            "a missing hour takes its one-step prediction and a zero residual",
            "onnx": "one graph per sensor, input 'state' float64 (1, n) = [y_recent (p+d), "
            "residuals (q), fourier_recent ((p+d)*2K), fourier_future (H*2K)]; outputs forecast, "
            "lower, upper (1, H)",
            "mean_reversion": "forecast_h = w_h * arima_h + (1 - w_h) * level_h, w_h = decay**h, "
            "level_h = level.intercept + fourier_h . level.beta; half-width_h = w_h * "
            "arima_half_h + (1 - w_h) * z * level.sigma",
            "physical_range": "forecast, lower and upper clipped to physical_range [min, max]",
        },
    }
    json.dumps(spec)  # fails loudly if anything is not JSON-able
    return spec


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | np.ndarray):
        return [_plain(v) for v in value]
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    return value
