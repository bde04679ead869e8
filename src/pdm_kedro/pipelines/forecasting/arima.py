"""pmdarima / statsmodels side of the forecaster: fit, coefficients, native forecasts."""

from __future__ import annotations

import logging
import warnings
from typing import Any

import numpy as np
import pandas as pd
from pmdarima.arima import ARIMA, auto_arima
from scipy.stats import norm
from threadpoolctl import threadpool_limits

from pdm_kedro.core.arima import EPISODE_START_COLUMN, fourier_terms

logger = logging.getLogger(__name__)

HOUR = "hour"
EPISODE_START = EPISODE_START_COLUMN


def hourly_frame(
    validated: pd.DataFrame, timestamp: str, sensors: list[str], episode: str | None = None
) -> pd.DataFrame:
    """Hourly means of the sensors on a contiguous hour grid (pandas ``resample("1h").mean()``).

    Returns ``hour`` (int64 hours since 1970-01-01T00:00), ``timestamp`` (hour start), with an
    ``episode`` column ``episode_start_hour`` (the hour of the first reading of the episode whose
    first reading falls in that hour, else missing: the known repairs) and one column per sensor;
    an hour without a finite reading is NaN (repair gaps, missing readings, quarantined rows).
    """
    frame = validated[[timestamp, *sensors]].copy()
    frame[timestamp] = pd.to_datetime(frame[timestamp]).astype("datetime64[ns]")
    hourly = frame.set_index(timestamp)[sensors].astype("float64").resample("1h").mean()
    index = hourly.index
    hours = ((index - pd.Timestamp(0)) // pd.Timedelta(hours=1)).to_numpy().astype(np.int64)
    out = hourly.reset_index(drop=True)
    out.insert(0, timestamp, index.to_numpy())
    out.insert(0, HOUR, hours)
    if episode is not None:
        starts = episode_start_hours(frame[timestamp].to_numpy(), validated[episode].to_numpy())
        marked = pd.Series(starts, dtype="Int64")
        out.insert(2, EPISODE_START, out[HOUR].where(out[HOUR].isin(marked)).astype("Int64"))
    return out


def episode_start_hours(timestamps: np.ndarray, episodes: np.ndarray) -> np.ndarray:
    """The hour index of each episode's first reading (sorted, unique)."""
    ts = pd.Series(pd.to_datetime(timestamps).astype("datetime64[ns]"))
    first = ts.groupby(np.asarray(episodes)).min()
    hours = (first - pd.Timestamp(0)) // pd.Timedelta(hours=1)
    return np.unique(hours.to_numpy().astype(np.int64))


def episode_starts(*frames: pd.DataFrame) -> np.ndarray | None:
    """The episode start hours marked in hourly frames (None when no frame carries them)."""
    marked = [
        f[EPISODE_START].dropna().to_numpy(dtype=np.int64) for f in frames if EPISODE_START in f
    ]
    if not marked:
        return None
    return np.unique(np.concatenate(marked))


def fit_history(
    hours: np.ndarray, values: np.ndarray, history_hours: int
) -> tuple[np.ndarray, np.ndarray, int]:
    """The last ``history_hours`` hours of a series, trimmed to finite ends, gaps interpolated.

    auto_arima refuses NaN, so missing hours and repair gaps inside the fitting window are filled
    by linear interpolation in time (fitting only; the backtest and the edge never interpolate).

    Returns:
        hours, values and how many hours were interpolated.
    """
    h = np.asarray(hours[-history_hours:], dtype=np.int64)
    y = np.asarray(values[-history_hours:], dtype=np.float64)
    finite = np.flatnonzero(np.isfinite(y))
    if finite.size < 2:
        raise ValueError("fewer than two finite hourly values to fit a forecaster")
    h, y = h[finite[0] : finite[-1] + 1], y[finite[0] : finite[-1] + 1]
    ok = np.isfinite(y)
    y = np.where(ok, y, np.interp(h, h[ok], y[ok]))
    return h, y, int(np.sum(~ok))


def fit_arima(y: np.ndarray, x: np.ndarray, arima: dict[str, Any]) -> ARIMA:
    """auto_arima: non-seasonal, stepwise, small orders, Fourier terms as exogenous regressors.

    BLAS runs on ``blas_threads`` threads: statsmodels' small matrix products get 10-30x slower
    when several processes oversubscribe the cores with BLAS threads.
    """
    with warnings.catch_warnings(), threadpool_limits(limits=int(arima["blas_threads"])):
        warnings.simplefilter("ignore")
        return auto_arima(
            y,
            X=x,
            seasonal=False,
            d=arima.get("d"),
            max_d=int(arima["max_d"]),
            start_p=0,
            start_q=0,
            max_p=int(arima["max_p"]),
            max_q=int(arima["max_q"]),
            information_criterion=str(arima["information_criterion"]),
            stepwise=True,
            n_jobs=1,
            maxiter=int(arima["maxiter"]),
            with_intercept=arima.get("with_intercept", "auto"),
            suppress_warnings=True,
            error_action="ignore",
        )


def inverse_ma_root(model: ARIMA) -> float:
    """Largest inverse root modulus of the MA polynomial (0 without MA terms; 1 = not invertible)."""
    ma = np.asarray(model.maparams(), dtype=float) if model.order[2] else np.zeros(0)
    if not ma.size:
        return 0.0
    return float(np.max(np.abs(np.roots(np.concatenate([[1.0], ma])))))


def fit_invertible_arima(y: np.ndarray, x: np.ndarray, arima: dict[str, Any]) -> ARIMA:
    """auto_arima, searched again with fewer MA terms while the MA part is nearly non-invertible.

    With an inverse MA root near 1 the forecast depends on residuals from arbitrarily far back:
    no finite window (neither the edge's nor the backtest's) reproduces the Kalman filter's state.
    ``max_inverse_ma_root`` bounds it.
    """
    limit = float(arima["max_inverse_ma_root"])
    search = dict(arima)
    while True:
        model = fit_arima(y, x, search)
        rho = inverse_ma_root(model)
        q = int(model.order[2])
        if rho <= limit or q == 0:
            return model
        logger.info(
            "ARIMA%s has inverse MA root %.3f > %.2f: searching with max_q=%d",
            model.order,
            rho,
            limit,
            q - 1,
        )
        search["max_q"] = q - 1


def linear_coefficients(model: ARIMA) -> dict[str, Any]:
    """The fitted model as plain numbers: order, AR, MA, intercept, Fourier betas, sigma2."""
    res = model.arima_res_
    params = dict(zip(res.model.param_names, np.asarray(res.params, dtype=float), strict=True))
    p, d, q = (int(v) for v in model.order)
    unsupported = [
        n
        for n in params
        if n not in {"intercept", "sigma2"} and not n.startswith(("x", "ar.L", "ma.L"))
    ]
    if unsupported or res.model.k_trend > (1 if "intercept" in params else 0):
        raise ValueError(f"cannot export ARIMA terms {unsupported or res.model.trend}")
    n_exog = int(res.model.k_exog)
    return {
        "order": [p, d, q],
        "ar": [params[f"ar.L{i}"] for i in range(1, p + 1)],
        "ma": [params[f"ma.L{i}"] for i in range(1, q + 1)],
        "intercept": params.get("intercept", 0.0),
        "beta": [params[f"x{i}"] for i in range(1, n_exog + 1)],
        "sigma2": params["sigma2"],
    }


def native_forecast(
    model: ARIMA,
    y_window: np.ndarray,
    x_window: np.ndarray,
    x_future: np.ndarray,
    alpha: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """pmdarima's model with its fitted coefficients fixed, filtered on a window, forecast ahead.

    The Kalman filter of the fitted statsmodels SARIMAX (its coefficients, no refit) runs over the
    window (NaN = missing hour) followed by ``len(x_future)`` missing hours: the filter's
    predictions of those hours are the multi-step forecasts and their variances, the same numbers
    as ``arima_res_.apply(...).get_forecast(...)`` in one filter pass instead of two (and no
    smoother). Returns the mean and the ``1 - alpha`` normal interval.
    """
    steps = len(x_future)
    fitted = model.arima_res_
    endog = np.concatenate([np.asarray(y_window, dtype=float), np.full(steps, np.nan)])
    exog = np.concatenate([x_window, x_future])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = fitted.model.clone(endog, exog=exog).filter(fitted.params, cov_type="none")
    predicted = res.filter_results
    mean = np.asarray(predicted.forecasts[0, -steps:], dtype=float)
    half = norm.ppf(1.0 - alpha / 2.0) * np.sqrt(predicted.forecasts_error_cov[0, 0, -steps:])
    return mean, mean - half, mean + half


def window_for_origin(
    hours: np.ndarray,
    values: np.ndarray,
    origin_hour: int,
    state_hours: int,
    fourier: dict[str, Any],
    episode_start: int | None = None,
) -> tuple[np.ndarray, np.ndarray] | None:
    """The state window before an origin (from ``episode_start`` on when it lies inside it,
    leading missing hours trimmed) and its Fourier terms.

    Same rule as :func:`pdm_kedro.core.arima.origin_state`.
    """
    start = origin_hour - state_hours
    if episode_start is not None:
        start = max(start, int(episode_start))
    sel = (hours >= start) & (hours < origin_hour)
    h, y = hours[sel], values[sel]
    finite = np.flatnonzero(np.isfinite(y))
    if not finite.size:
        return None
    h, y = h[finite[0] :], y[finite[0] :]
    return y, fourier_terms(h, fourier["period_hours"], fourier["terms"])
