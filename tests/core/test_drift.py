"""Drift statistics with thresholds calibrated on reference chunks: healthy autocorrelated data
stay below them, a shifted sensor does not."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pdm_kedro.core.drift import DriftReference, bin_edges, chunk_starts, column_statistics

WINDOW = 200


def ar1(n: int, seed: int, phi: float = 0.97) -> np.ndarray:
    rng = np.random.default_rng(seed)
    noise = rng.normal(0.0, 1.0, n)
    out = np.empty(n)
    out[0] = noise[0]
    for i in range(1, n):
        out[i] = phi * out[i - 1] + noise[i]
    return out


def test_identical_samples_have_zero_statistics_and_a_shift_raises_every_one():
    ref = ar1(3000, 1)
    edges = bin_edges(ref, 10)
    same = column_statistics(ref, ref, edges, float(np.std(ref)))
    assert same["ks"] == 0.0 and same["wasserstein"] == 0.0 and abs(same["psi"]) < 1e-9
    shifted = column_statistics(ref, ref + 3 * np.std(ref), edges, float(np.std(ref)))
    assert shifted["ks"] > 0.5 and shifted["psi"] > 1.0 and shifted["wasserstein"] > 2.9
    assert shifted["js"] > same["js"]


def test_chunks_are_capped_and_evenly_spread():
    starts = chunk_starts(10_000, 200, 50, 40)
    assert len(starts) == 40 and starts[0] == 0 and starts[-1] == 10_000 - 200
    assert chunk_starts(100, 200, 50, 40).size == 0


def test_healthy_autocorrelated_windows_do_not_fire_and_an_offset_does():
    """Raw KS p-values would flag most healthy AR(1) windows; the calibrated thresholds do not."""
    from scipy.stats import ks_2samp

    ref = pd.DataFrame({"s": ar1(6000, 2)})
    drift = DriftReference(ref, ["s"], WINDOW, margin=1.25)
    healthy = ar1(20 * WINDOW, 3)
    windows = [healthy[i * WINDOW : (i + 1) * WINDOW] for i in range(20)]
    p_values = [ks_2samp(ref["s"], w).pvalue for w in windows]
    assert sum(p < 0.05 for p in p_values) >= 10  # why raw p-values are not used
    flagged = [drift.check(pd.DataFrame({"s": w}))["s"]["drifted"] for w in windows]
    assert sum(flagged) <= 1
    sd = float(ref["s"].std())
    shifted = [drift.check(pd.DataFrame({"s": w + 3 * sd}))["s"]["drifted"] for w in windows]
    assert all(shifted)


def test_a_reference_shorter_than_two_windows_is_refused_in_one_line():
    with pytest.raises(ValueError, match="lower monitoring.window_days"):
        DriftReference(pd.DataFrame({"s": np.zeros(150)}), ["s"], WINDOW)


def test_the_ks_statistic_equals_scipys():
    from scipy.stats import ks_2samp

    from pdm_kedro.core.drift import ks_statistic

    ref, cur = ar1(2000, 4), ar1(300, 5) + 0.5
    assert ks_statistic(np.sort(ref), cur) == pytest.approx(ks_2samp(ref, cur).statistic, abs=1e-12)


def test_a_fence_keeps_a_few_dropouts_from_moving_the_wasserstein_distance():
    """A healthy week with a handful of readings dropped to 0 (as the simulator's sensor faults
    do, and as training saw now and then) is not drift; a shifted bulk still is. The thresholds
    are the unclipped ones: the fence only lowers a window's statistics."""
    rng = np.random.default_rng(4)
    values = ar1(8000, 5)
    sd = float(values.std())
    values[rng.choice(values.size, 12, replace=False)] = -60 * sd  # 0.15 % dropouts in training
    ref = pd.DataFrame({"s": values})
    plain = DriftReference(ref, ["s"], WINDOW, quantile=0.95, margin=1.5)
    fenced = DriftReference(ref, ["s"], WINDOW, quantile=0.95, margin=1.5, fence=5.0)
    week = ar1(WINDOW, 6)
    week[[20, 21, 22, 90, 91, 150]] = -60 * sd  # a burst of dropouts in one window
    burst = pd.DataFrame({"s": week})
    assert "wasserstein" in plain.check(burst, 1)["s"]["above"]
    assert fenced.check(burst, 1)["s"]["above"] == []
    shifted = pd.DataFrame({"s": ar1(WINDOW, 7) + 3 * sd})
    assert set(fenced.check(shifted, 1)["s"]["above"]) == {"psi", "ks", "wasserstein"}
    assert fenced.thresholds == plain.thresholds
    # the fences come from the reference's quartiles; a column without spread is not clipped
    low, high = fenced.limits["s"]
    q1, q3 = np.quantile(values, [0.25, 0.75])
    assert (low, high) == pytest.approx((q1 - 5 * (q3 - q1), q3 + 5 * (q3 - q1)))
    flat = DriftReference(pd.DataFrame({"s": np.zeros(1000)}), ["s"], WINDOW, fence=5.0)
    assert flat.limits["s"] is None
