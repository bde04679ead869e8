"""Scoring protocols of the real-data benchmark, on hand-made numbers."""

import numpy as np
import pandas as pd
import pytest

from pdm_kedro import contract as c
from pdm_kedro.pipelines.data_ingestion import real_data_evaluation as ev


def test_nasa_score_penalises_late_more_than_early():
    assert ev.nasa_score([50], [50]) == 0.0
    assert ev.nasa_score([50], [40]) == pytest.approx(np.exp(10 / 13) - 1)  # early
    assert ev.nasa_score([50], [60]) == pytest.approx(np.exp(1.0) - 1)  # late
    assert ev.nasa_score([50], [60]) > ev.nasa_score([50], [40])
    assert ev.rmse([0, 0], [3, 4]) == pytest.approx(np.sqrt(12.5))


def test_binary_rates_match_the_leaderboard_definitions():
    y = np.array([1, 1, 1, 1, 0, 0, 0, 0, 0, 0])
    flags = np.array([1, 1, 1, 0, 1, 0, 0, 0, 0, 0])
    r = ev.binary_rates(y, flags)
    assert r["f1"] == pytest.approx(0.75)
    assert r["far_pct"] == pytest.approx(100 / 6)
    assert r["mar_pct"] == pytest.approx(25.0)
    everything = ev.binary_rates(y, np.ones_like(y))
    assert everything["far_pct"] == 100.0 and everything["mar_pct"] == 0.0


def test_last_rows_and_seeded_truncation_take_one_row_per_episode():
    frame = pd.DataFrame(
        {
            c.EPISODE: [1, 1, 1, 2, 2],
            c.TIMESTAMP: pd.to_datetime(
                ["2020-01-03", "2020-01-01", "2020-01-02"] * 1 + ["2020-01-01", "2020-01-02"]
            ),
            c.RUL: [0.0, 2.0, 1.0, 1.0, 0.0],
        }
    )
    assert ev.last_rows(frame)[c.RUL].tolist() == [0.0, 0.0]
    cut = ev.truncate_episodes(frame, seed=0)
    assert cut[c.EPISODE].tolist() == [1, 2]
    pd.testing.assert_frame_equal(cut, ev.truncate_episodes(frame, seed=0))


def test_pca_detector_flags_a_shift_and_not_the_normal_rows():
    rng = np.random.default_rng(0)
    base = rng.normal(size=(900, 4))
    base[:, 1] += base[:, 0]  # correlated sensors
    shifted = base.copy()
    shifted[600:, 1] -= 3 * base[600:, 0]  # breaks the correlation: a residual (Q) anomaly
    flags = ev.detect_per_file(
        [shifted], fit_rows=400, explained=0.9, window=10, margin=1.0, scale_floor=1e-6
    )[0]
    assert flags[250:].mean() > 0.9  # rows 650.. of the file
    assert flags[:150].mean() < 0.1
