"""Causal window features in pure numpy: one definition for training and for the edge.

Everything here works on one episode at a time (rows in time order) and uses only the current and
earlier rows, so a feature at row t never sees the future and never crosses an episode. The Kedro
feature pipeline and ``pdm_kedro.edge`` both call :func:`episode_features`, which is what makes
training/serving parity hold by construction (and a test checks it).

Only numpy is imported: this module runs on an edge device.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

STATISTICS = ("mean", "std", "slope", "min", "max")


def forward_fill(values: np.ndarray, fallback: np.ndarray) -> np.ndarray:
    """Fill NaN with the last earlier reading of the same sensor, else with ``fallback``."""
    out = np.array(values, dtype=np.float64, copy=True)
    n = out.shape[0]
    missing = np.isnan(out)
    if not missing.any():
        return out
    idx = np.where(~missing, np.arange(n)[:, None], -1)
    np.maximum.accumulate(idx, axis=0, out=idx)
    filled = np.take_along_axis(out, np.maximum(idx, 0), axis=0)
    no_history = idx < 0
    filled[no_history] = np.broadcast_to(fallback, out.shape)[no_history]
    return filled


def _window_sums(x: np.ndarray, window: int) -> np.ndarray:
    """Sum of the last ``window`` rows (fewer at the start) for each row and column."""
    c = np.cumsum(x, axis=0)
    out = c.copy()
    out[window:] -= c[:-window]
    return out


def _trailing_extreme(x: np.ndarray, window: int, pick: np.ufunc, pad: float) -> np.ndarray:
    """Trailing-window minimum (``np.minimum``, pad ``inf``) or maximum of each column, expanding
    at the start: the extreme of spans doubling in length (1, 2, 4, ... rows), then of the two
    overlapping spans that cover the window. Exact (no arithmetic), NaN propagates as in
    ``min``/``max``, and log2(window) array passes instead of one per row."""
    n = x.shape[0]
    padded = np.vstack([np.full((window - 1, x.shape[1]), pad), x])
    span, extreme = 1, padded
    while 2 * span <= window:
        extreme = pick(extreme[span:], extreme[:-span])  # row i: rows i .. i + 2 * span - 1
        span *= 2
    # rows i .. i + span - 1 and i + window - span .. i + window - 1 cover the window at i
    return pick(extreme[:n], extreme[window - span : window - span + n])


def rolling_stats(
    x: np.ndarray, window: int, statistics: Sequence[str] = STATISTICS
) -> dict[str, np.ndarray]:
    """Trailing-window statistics of each column of ``x`` (n, k), expanding at the start.

    ``std`` is the population standard deviation; ``slope`` is the least-squares slope per row.
    """
    n = x.shape[0]
    count = np.minimum(np.arange(1, n + 1), window).astype(np.float64)[:, None]
    out: dict[str, np.ndarray] = {}
    centre = x[:1]  # centring keeps the running sums well conditioned
    xc = x - centre
    s1 = _window_sums(xc, window)
    mean_c = s1 / count
    if "mean" in statistics:
        out["mean"] = mean_c + centre
    if "std" in statistics:
        s2 = _window_sums(xc * xc, window)
        out["std"] = np.sqrt(np.maximum(s2 / count - mean_c * mean_c, 0.0))
    if "slope" in statistics:
        t = np.arange(n, dtype=np.float64)[:, None]
        st = _window_sums(t, window)
        stt = _window_sums(t * t, window)
        stx = _window_sums(t * xc, window)
        var_t = stt / count - (st / count) ** 2
        cov = stx / count - (st / count) * mean_c
        with np.errstate(divide="ignore", invalid="ignore"):
            slope = np.where(var_t > 1e-12, cov / var_t, 0.0)
        out["slope"] = slope
    if "min" in statistics:
        out["min"] = _trailing_extreme(x, window, np.minimum, np.inf)
    if "max" in statistics:
        out["max"] = _trailing_extreme(x, window, np.maximum, -np.inf)
    return {k: out[k] for k in statistics}


def rolling_median(x: np.ndarray, window: int) -> np.ndarray:
    """Trailing-window median of each column of ``x`` (n, k), expanding at the start."""
    n = x.shape[0]
    out = np.empty_like(x, dtype=np.float64)
    head = min(window - 1, n)
    for t in range(head):
        out[t] = np.median(x[: t + 1], axis=0)
    if n >= window:
        view = np.lib.stride_tricks.sliding_window_view(x, window, axis=0)
        out[window - 1 :] = np.median(view, axis=-1)
    return out


def repeat_runs(readings: np.ndarray, cap: int) -> np.ndarray:
    """Consecutive exact repeats of the reading ending at each row, capped at ``cap``.

    A live analogue sensor practically never repeats a reading to the last bit; a stuck or
    dropped-out one does. The count drops to 0 as soon as the reading moves again, and a missing
    reading (NaN) is never a repeat, so gap filling can't fake one. The cap bounds the history a
    row depends on to ``cap + 1`` readings.
    """
    repeated = np.zeros(readings.shape, dtype=bool)
    repeated[1:] = readings[1:] == readings[:-1]
    run = repeated.astype(np.float64)
    streak = repeated.copy()
    for k in range(1, cap):
        streak[k:] &= repeated[:-k]
        streak[:k] = False
        run += streak
    return run


def feature_names(
    sensors: Sequence[str],
    kinds: Sequence[str],
    window_labels: Sequence[str],
    statistics: Sequence[str] = STATISTICS,
) -> list[str]:
    """Column names produced by :func:`episode_features`, in order."""
    names = [f"{s}" for s in sensors]
    names += [f"{s}__zscore" for s in sensors]
    names += [f"{s}__abs_diff" for s in sensors]
    names += [f"{s}__median_resid_{window_labels[len(window_labels) // 2]}" for s in sensors]
    # (the same suffix as median_residual_suffix(windows_hours))
    names += [f"{s}__repeat_run" for s in sensors]
    for label in window_labels:
        names += [f"{s}__{stat}_{label}" for stat in statistics for s in sensors]
    if "temperature" in kinds:
        names += ["temperature__mean", "temperature__max", "temperature__spread"]
    if "vibration" in kinds:
        names += ["vibration__rms", f"vibration__peak_{window_labels[0]}"]
    names += ["health_index", f"health_index__slope_{window_labels[-1]}"]
    return names


def episode_features(
    readings: np.ndarray,
    kinds: Sequence[str],
    median: np.ndarray,
    scale: np.ndarray,
    windows_rows: Sequence[int],
    statistics: Sequence[str] = STATISTICS,
) -> np.ndarray:
    """Feature matrix of one episode, in the column order of :func:`feature_names`.

    Args:
        readings: (n, sensors) raw readings of one episode in time order; NaN allowed.
        kinds: the kind of each sensor (``temperature``, ``vibration``, ...).
        median, scale: per-sensor baseline fitted on the training split.
        windows_rows: trailing window lengths in rows, shortest first. The middle one also sets
            the rolling median behind ``__median_resid`` (the reading's deviation from it, in
            units of the fitted scale), the shortest one caps ``__repeat_run``.
        statistics: rolling statistics to compute per window.
    """
    raw = np.asarray(readings, dtype=np.float64)
    x = forward_fill(raw, median)
    z = (x - median) / scale
    abs_diff = np.vstack([np.zeros((1, x.shape[1])), np.abs(np.diff(x, axis=0))])
    median_resid = (x - rolling_median(x, int(windows_rows[len(windows_rows) // 2]))) / scale
    repeats = repeat_runs(raw, int(windows_rows[0]))
    blocks = [x, z, abs_diff, median_resid, repeats]
    for window in windows_rows:
        stats = rolling_stats(x, int(window), statistics)
        blocks += [stats[name] for name in statistics]
    kinds_arr = np.asarray(kinds)
    temps = x[:, kinds_arr == "temperature"]
    if temps.shape[1]:
        blocks.append(
            np.column_stack(
                [temps.mean(axis=1), temps.max(axis=1), temps.max(axis=1) - temps.min(axis=1)]
            )
        )
    vib = x[:, kinds_arr == "vibration"]
    if vib.shape[1]:
        rms = np.sqrt(np.mean(vib * vib, axis=1, keepdims=True))
        peak = rolling_stats(rms, int(windows_rows[0]), ("max",))["max"]
        blocks.append(np.column_stack([rms, peak]))
    long_mean_z = rolling_stats(z, int(windows_rows[-1]), ("mean",))["mean"]
    health = np.mean(np.abs(long_mean_z), axis=1, keepdims=True)
    health_slope = rolling_stats(health, int(windows_rows[-1]), ("slope",))["slope"]
    blocks.append(np.column_stack([health, health_slope]))
    return np.column_stack(blocks)


def window_rows(windows_hours: Sequence[float], rows_per_hour: float) -> list[int]:
    """Window lengths in rows (at least 2) for a machine's sampling rate."""
    return [max(2, round(h * rows_per_hour)) for h in windows_hours]


def window_labels(windows_hours: Sequence[float]) -> list[str]:
    """Readable window suffixes: ``3h``, ``12h``, ``48h``."""
    return [f"{h:g}h" for h in windows_hours]


def median_residual_suffix(windows_hours: Sequence[float]) -> str:
    """The suffix of the median-residual feature columns: the middle window's
    (``__median_resid_12h`` for windows 3, 12, 48 h)."""
    labels = window_labels(windows_hours)
    return f"__median_resid_{labels[len(labels) // 2]}"


def last_row_history(windows_rows: Sequence[int]) -> int:
    """Rows of history the last row's features depend on (besides forward filling).

    ``health_index__slope`` of the longest window ``w`` needs the health index of the last ``w``
    rows, each a mean over ``w`` rows: ``2 w - 1`` rows; ``__repeat_run`` needs ``w_0 + 1``.
    """
    rows = [int(w) for w in windows_rows]
    return max(2 * rows[-1] - 1, *rows, rows[0] + 1, 2)


def _fallback_before(head: np.ndarray, median: np.ndarray) -> np.ndarray:
    """Each sensor's last reading in ``head`` (its median when it has none)."""
    valid = ~np.isnan(head)
    last = head.shape[0] - 1 - np.argmax(valid[::-1], axis=0)
    values = head[last, np.arange(head.shape[1])]
    return np.where(valid.any(axis=0), values, np.broadcast_to(median, values.shape))


def _last_slope(y: np.ndarray) -> np.ndarray:
    """Least-squares slope over the rows of ``y`` (c, k) against 0..c-1 (0 for one row)."""
    c = y.shape[0]
    if c < 2:
        return np.zeros(y.shape[1])
    t = np.arange(c, dtype=np.float64) - (c - 1) / 2.0
    return (t @ (y - y.mean(axis=0))) / (t @ t)


def _last_window_stats(
    x: np.ndarray, rows: Sequence[int], statistics: Sequence[str]
) -> dict[str, np.ndarray]:
    """Each statistic of each window ending at the last row, as (windows, k) arrays.

    One pass over the longest window, newest row first: the sums over the last ``w`` rows are the
    running sums at ``w - 1``, centred on the last reading (a window of equal readings has a std
    of exactly 0); the slope uses row offsets ``0, -1, -2, ...`` (a slope ignores the origin).
    """
    m = x.shape[0]
    counts = np.minimum(np.asarray(rows), m)
    at = counts - 1
    c = counts.astype(np.float64)[:, None]
    back = x[::-1][: int(counts.max())]
    centre = back[0]
    xc = back - centre
    s1 = np.cumsum(xc, axis=0)[at]
    mean_c = s1 / c
    out = {"mean": mean_c + centre}
    if "std" in statistics:
        s2 = np.cumsum(xc * xc, axis=0)[at]
        out["std"] = np.sqrt(np.maximum(s2 / c - mean_c * mean_c, 0.0))
    if "slope" in statistics:
        j = np.arange(back.shape[0], dtype=np.float64)[:, None]
        sjx = np.cumsum(j * xc, axis=0)[at]
        mean_j = (c - 1.0) / 2.0
        var_j = (c * c - 1.0) / 12.0
        with np.errstate(divide="ignore", invalid="ignore"):
            # time runs backwards along j: slope = -cov(j, x) / var(j)
            slope = np.where(var_j > 1e-12, -(sjx / c - mean_j * mean_c) / var_j, 0.0)
        out["slope"] = slope
    if "min" in statistics:
        out["min"] = np.minimum.accumulate(back, axis=0)[at]
    if "max" in statistics:
        out["max"] = np.maximum.accumulate(back, axis=0)[at]
    return out


def last_row_features(
    readings: np.ndarray,
    kinds: Sequence[str],
    median: np.ndarray,
    scale: np.ndarray,
    windows_rows: Sequence[int],
    statistics: Sequence[str] = STATISTICS,
) -> np.ndarray:
    """The features of the LAST row only: ``episode_features(...)[-1]`` without the other rows.

    The same arguments and column order as :func:`episode_features`. Only the last
    :func:`last_row_history` rows are read (earlier rows only for a sensor whose readings in that
    tail start with a gap, to forward-fill it), and each statistic is computed once for the last
    row's window instead of for every row, so the cost does not grow with the history sent.
    Values equal ``episode_features`` to float64 rounding (the running sums there are centred on
    the episode's first row, here on the last reading, so ``std`` differs by up to
    ``sqrt(eps) * |x - x_0|`` where ``episode_features`` loses digits to cancellation); ``min``,
    ``max``, the median residual, ``__repeat_run`` and the raw/z-score/diff columns are
    bit-identical.
    """
    raw = np.asarray(readings, dtype=np.float64)
    n = raw.shape[0]
    median = np.asarray(median, dtype=np.float64)
    scale = np.asarray(scale, dtype=np.float64)
    rows = [int(w) for w in windows_rows]
    need = last_row_history(rows)
    tail = raw[-need:] if n > need else raw
    fallback = median
    if n > need and np.isnan(tail[0]).any():
        fallback = _fallback_before(raw[: n - need], median)
    x = forward_fill(tail, fallback)
    m = x.shape[0]
    last = x[-1]
    z = (x - median) / scale
    abs_diff = np.abs(last - x[-2]) if m >= 2 else np.zeros_like(last)
    median_resid = (last - np.median(x[-rows[len(rows) // 2] :], axis=0)) / scale
    cap = rows[0]
    repeats = repeat_runs(tail[-(cap + 1) :], cap)[-1]
    blocks = [last, z[-1], abs_diff, median_resid, repeats]
    stats = _last_window_stats(x, rows, statistics)
    for i in range(len(rows)):
        blocks += [stats[name][i] for name in statistics]
    kinds_arr = np.asarray(kinds)
    temps = last[kinds_arr == "temperature"]
    if temps.shape[0]:
        blocks.append(np.array([temps.mean(), temps.max(), temps.max() - temps.min()]))
    vib_cols = kinds_arr == "vibration"
    if vib_cols.any():
        vib = x[-cap:, vib_cols]
        rms = np.sqrt(np.mean(vib * vib, axis=1))
        blocks.append(np.array([rms[-1], rms.max()]))
    long = rows[-1]
    # rolling mean of z over the long window at each of the last min(n, long) rows
    k = min(n, long)
    csum = np.cumsum(np.vstack([np.zeros((1, z.shape[1])), z - z[:1]]), axis=0)
    ends = np.arange(m - k, m) + 1  # exclusive ends in the tail
    starts = np.maximum(ends - long, 0)
    counts = (ends - starts).astype(np.float64)[:, None]
    long_mean_z = (csum[ends] - csum[starts]) / counts + z[:1]
    health = np.mean(np.abs(long_mean_z), axis=1, keepdims=True)
    blocks.append(np.array([health[-1, 0], _last_slope(health)[0]]))
    return np.concatenate(blocks)
