"""``last_row_features`` equals the last row of ``episode_features`` on random histories."""

import numpy as np
import pytest

from pdm_kedro.core.window_features import (
    episode_features,
    feature_names,
    last_row_features,
    last_row_history,
)

KINDS = ("temperature", "vibration", "current", "speed")


def _history(rng, n, k):
    x = 50 + np.cumsum(rng.normal(size=(n, k)), axis=0)
    if rng.random() < 0.5:  # scattered gaps
        x[rng.random((n, k)) < rng.random() * 0.6] = np.nan
    if rng.random() < 0.3:  # stuck readings -> repeat runs
        x[:, 0] = np.round(x[:, 0])
    if rng.random() < 0.2 and n > 5:  # a sensor silent over the whole tail: filled from far back
        x[max(1, n - 200) : n - 1, 0] = np.nan
    if rng.random() < 0.1:
        x[:, -1] = np.nan  # never read: the median fallback
    return x


def _tolerance(name):
    # episode_features' running sums are centred on the episode's first row: their std loses
    # ~sqrt(eps) * |x - x0| to cancellation (a constant window gives 1e-7, not 0), the slope a
    # little; the direct sums here are the more exact ones. Everything else is bit-identical or
    # within 1e-9.
    if "__std_" in name:
        return 1e-5
    if "__slope_" in name:
        return 1e-8
    return 1e-9


def test_last_row_equals_episode_features_on_random_histories():
    rng = np.random.default_rng(20261202)
    compared = 0
    for _ in range(600):
        k = int(rng.integers(1, 7))
        kinds = [str(v) for v in rng.choice(KINDS, size=k)]
        windows = sorted({int(v) for v in rng.integers(2, 40, size=3)})
        n = int(rng.choice([1, 2, 3, int(rng.integers(4, 90)), int(rng.integers(90, 400))]))
        x = _history(rng, n, k)
        median = rng.normal(50, 1, size=k)
        scale = rng.uniform(0.5, 2, size=k)
        names = feature_names([f"s{i}" for i in range(k)], kinds, [f"{w}h" for w in windows])
        full = episode_features(x, kinds, median, scale, windows)[-1]
        last = last_row_features(x, kinds, median, scale, windows)
        assert last.shape == full.shape == (len(names),)
        for name, got, want in zip(names, last, full, strict=True):
            tol = _tolerance(name)
            assert got == pytest.approx(want, rel=tol, abs=tol), (name, n, windows, kinds)
        compared += 1
    assert compared == 600


def test_last_row_reads_only_the_tail_it_needs():
    rng = np.random.default_rng(3)
    windows = [3, 8, 20]
    x = 50 + np.cumsum(rng.normal(size=(300, 2)), axis=0)
    args = (["temperature", "vibration"], np.array([50.0, 50.0]), np.array([1.0, 1.0]), windows)
    need = last_row_history(windows)
    assert need == 2 * 20 - 1
    changed = x.copy()
    changed[: 300 - need] += 1000.0  # rewrite everything before the tail
    np.testing.assert_array_equal(last_row_features(x, *args), last_row_features(changed, *args))
    changed[300 - need] += 1.0  # the tail's first row does count (health index slope)
    assert not np.array_equal(last_row_features(x, *args), last_row_features(changed, *args))
