"""Drift statistics of a window against a training reference, with thresholds calibrated on
reference chunks (as NannyML does) rather than raw p-values, so that healthy autocorrelated
data do not fire.

Per column: the population stability index (PSI, on reference-quantile bins), the
Kolmogorov-Smirnov statistic (that of :func:`scipy.stats.ks_2samp`), the Wasserstein distance
(:func:`scipy.stats.wasserstein_distance`, in units of the reference's standard deviation) and
the Jensen-Shannon distance of the binned distributions (:func:`scipy.spatial.distance.jensenshannon`).
A statistic's threshold is a quantile of its values over contiguous chunks of the reference, each
as long as a monitoring window, times a margin.

With ``fence`` (k, in interquartile ranges) a checked window's values are first clipped to the
reference's far-out fences ``[Q1 - k IQR, Q3 + k IQR]`` (Tukey's, k 3): a few isolated extreme
readings (a sensor dropping to 0 for one reading) then move its Wasserstein distance by their
distance to the fence, not by their full distance, while a shift of the bulk still counts in full
up to the fence. The thresholds stay calibrated on the reference as it is (its chunks unclipped):
clipping only lowers a window's statistics, so it never flags a window the unclipped check would
not. (Clipping the reference chunks as well lowered the Wasserstein thresholds and flagged healthy
windows of the small config.)
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.spatial.distance import jensenshannon
from scipy.stats import wasserstein_distance

STATISTICS = ("psi", "ks", "wasserstein", "js")
FLAGGING = ("psi", "ks", "wasserstein")  # the statistics that vote for a drifted column
EPS = 1e-4


def bin_edges(reference: np.ndarray, bins: int) -> np.ndarray:
    """Inner edges at the reference's quantiles (duplicates dropped for discrete columns)."""
    finite = reference[np.isfinite(reference)]
    if finite.size == 0:
        return np.array([])
    return np.unique(np.quantile(finite, np.linspace(0, 1, bins + 1)[1:-1]))


def _shares(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    counts = np.bincount(np.searchsorted(edges, values, side="right"), minlength=edges.size + 1)
    return (counts + EPS) / (counts.sum() + EPS * counts.size)


def ks_statistic(reference_sorted: np.ndarray, current: np.ndarray) -> float:
    """The two-sample Kolmogorov-Smirnov statistic (the same number as
    ``scipy.stats.ks_2samp(...).statistic``, without its p-value: thresholds are calibrated, and
    the exact p-value costs ~20x the statistic)."""
    cur = np.sort(current)
    both = np.concatenate([reference_sorted, cur])
    ref_cdf = np.searchsorted(reference_sorted, both, side="right") / reference_sorted.size
    cur_cdf = np.searchsorted(cur, both, side="right") / cur.size
    return float(np.max(np.abs(ref_cdf - cur_cdf)))


def column_statistics(
    reference: np.ndarray, current: np.ndarray, edges: np.ndarray, scale: float
) -> dict[str, float]:
    """PSI, KS, Wasserstein (/ ``scale``) and Jensen-Shannon of ``current`` against ``reference``
    (NaN readings left out; NaN statistics when either side has no finite value)."""
    ref = reference[np.isfinite(reference)]
    cur = current[np.isfinite(current)]
    if ref.size == 0 or cur.size == 0:
        return dict.fromkeys(STATISTICS, float("nan"))
    p, q = _shares(ref, edges), _shares(cur, edges)
    return {
        "psi": float(np.sum((q - p) * np.log(q / p))),
        "ks": ks_statistic(np.sort(ref), cur),
        "wasserstein": float(wasserstein_distance(ref, cur) / scale),
        "js": float(jensenshannon(p, q, base=2)),
    }


def _scale(reference: np.ndarray) -> float:
    finite = reference[np.isfinite(reference)]
    sd = float(np.std(finite)) if finite.size else 0.0
    return sd if sd > 1e-12 else 1.0


def fence_limits(reference: np.ndarray, fence: float | None) -> tuple[float, float] | None:
    """The reference's far-out fences ``Q1 - fence IQR`` and ``Q3 + fence IQR`` (None: no
    fence, no finite value, or an IQR of 0: a discrete column has no outliers to clip)."""
    finite = reference[np.isfinite(reference)]
    if fence is None or finite.size == 0:
        return None
    q1, q3 = np.quantile(finite, [0.25, 0.75])
    iqr = float(q3 - q1)
    if iqr <= 0:
        return None
    return float(q1 - fence * iqr), float(q3 + fence * iqr)


def chunk_starts(n_rows: int, window_rows: int, step_rows: int, max_chunks: int) -> np.ndarray:
    """Starts of the reference chunks (at most ``max_chunks``, evenly spread)."""
    if n_rows < window_rows or window_rows < 1:
        return np.array([], dtype=int)
    starts = np.arange(0, n_rows - window_rows + 1, max(1, step_rows))
    if starts.size > max_chunks:
        starts = starts[np.linspace(0, starts.size - 1, max_chunks).round().astype(int)]
    return starts


class DriftReference:
    """The training reference of a set of columns and its calibrated thresholds."""

    def __init__(
        self,
        reference: pd.DataFrame,
        columns: list[str],
        window_rows: int,
        *,
        bins: int = 10,
        step_fraction: float = 0.25,
        max_chunks: int = 40,
        quantile: float = 1.0,
        margin: float = 1.25,
        thresholds: dict[str, dict[str, float]] | None = None,
        fence: float | None = None,
    ) -> None:
        """``thresholds`` (with ``n_chunks``): a calibration stored from an earlier
        construction on the same reference and options, reused instead of recomputed.
        ``fence``: values are clipped to the reference's ``Q1 - fence IQR``, ``Q3 + fence IQR``
        (None: no clipping)."""
        self.columns = list(columns)
        self.values = {col: reference[col].to_numpy(dtype=np.float64) for col in self.columns}
        self.limits = {col: fence_limits(v, fence) for col, v in self.values.items()}
        self.edges = {col: bin_edges(v, bins) for col, v in self.values.items()}
        self.scales = {col: _scale(v) for col, v in self.values.items()}
        starts = chunk_starts(
            len(reference), window_rows, int(window_rows * step_fraction), max_chunks
        )
        if starts.size < 2:
            raise ValueError(
                f"the training reference ({len(reference)} rows) holds fewer than two chunks of one "
                f"monitoring window ({window_rows} rows): lower monitoring.window_days"
            )
        self.n_chunks = int(starts.size)
        self.thresholds: dict[str, dict[str, float]] = {}
        if thresholds is not None and set(self.columns) <= set(thresholds):
            self.thresholds = {col: dict(thresholds[col]) for col in self.columns}
            return
        for col in self.columns:
            stats = [self.statistics_of(col, self.values[col][s : s + window_rows]) for s in starts]
            self.thresholds[col] = {
                stat: float(np.nanquantile([x[stat] for x in stats], quantile) * margin)
                if np.isfinite([x[stat] for x in stats]).any()
                else float("inf")
                for stat in STATISTICS
            }

    def statistics_of(self, col: str, current: np.ndarray) -> dict[str, float]:
        """The statistics of ``current`` as it is (what the thresholds are calibrated on)."""
        return column_statistics(self.values[col], current, self.edges[col], self.scales[col])

    def window_statistics(self, col: str, current: np.ndarray) -> dict[str, float]:
        """The statistics of a checked window: its values clipped to the fences first."""
        limits = self.limits[col]
        clipped = current if limits is None else np.clip(current, *limits)
        return self.statistics_of(col, clipped)

    def check(self, window: pd.DataFrame, min_statistics: int = 2) -> dict[str, dict]:
        """Per column: each statistic, its threshold, and ``drifted`` (at least
        ``min_statistics`` of :data:`FLAGGING` above their thresholds)."""
        out = {}
        for col in self.columns:
            stats = self.window_statistics(col, window[col].to_numpy(dtype=np.float64))
            above = [s for s in FLAGGING if stats[s] > self.thresholds[col][s]]
            out[col] = {
                **{s: _round(v) for s, v in stats.items()},
                "thresholds": {s: _round(v) for s, v in self.thresholds[col].items()},
                "above": above,
                "drifted": len(above) >= min_statistics,
            }
        return out


def _round(value: float) -> float | None:
    return None if not np.isfinite(value) else round(float(value), 6)
