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
