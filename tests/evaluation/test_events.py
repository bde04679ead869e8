"""Event-level metrics on hand-made series with known lead times and false alarms, and the
episode bootstrap on a fixture."""

from __future__ import annotations

import numpy as np
import pytest

from pdm_kedro.evaluation.events import (
    bootstrap_interval,
    episode_events,
    event_summary,
    sustained,
)

HORIZON = 48.0


def episode(hours: int, alarm_rul: list[tuple[float, float]], failure: bool = True):
    """One reading an hour; RUL counts down to 0 (or to 10 h: no failure); the alarm is on where
    ``lo <= rul <= hi`` for any (lo, hi) in ``alarm_rul``."""
    rul = np.arange(hours - 1, -1, -1, dtype=float) + (0.0 if failure else 10.0)
    alarm = np.zeros(hours, dtype=int)
    for lo, hi in alarm_rul:
        alarm[(rul >= lo) & (rul <= hi)] = 1
    return alarm, rul


def series(*episodes):
    alarms, ruls, ids = [], [], []
    for i, (alarm, rul) in enumerate(episodes):
        alarms.append(alarm), ruls.append(rul), ids.append(np.full(len(alarm), i))
    return np.concatenate(alarms), np.concatenate(ids), np.concatenate(ruls)


def test_sustained_needs_k_readings_in_a_row_of_one_episode():
    alarm = np.array([1, 1, 0, 1, 1, 1, 1, 1])
    ids = np.array([0, 0, 0, 0, 0, 1, 1, 1])
    assert sustained(alarm, ids, 2).tolist() == [0, 1, 0, 0, 1, 0, 1, 1]
    assert sustained(alarm, ids, 1).tolist() == alarm.astype(bool).tolist()


def _in_a_row(alarm, ids, k):
    """k readings in a row of one episode, one reading at a time (the definition, spelled out)."""
    run, out = 0, []
    for i, on in enumerate(alarm):
        run = (run + 1 if i and ids[i] == ids[i - 1] else 1) if on else 0
        out.append(run >= k)
    return out


def test_sustained_with_the_window_equal_to_k_is_k_in_a_row():
    rng = np.random.default_rng(3)
    alarm = rng.random(500) < 0.6
    ids = np.repeat(np.arange(10), 50)
    for k in (1, 2, 3, 4, 7):
        assert sustained(alarm, ids, k).tolist() == _in_a_row(alarm, ids, k)
        assert sustained(alarm, ids, k, k).tolist() == _in_a_row(alarm, ids, k)


def test_k_of_n_holds_through_a_gap_and_never_counts_the_episode_before():
    alarm = np.array([1, 1, 0, 1, 0, 0, 0, 1, 1, 1])
    ids = np.array([0, 0, 0, 0, 0, 0, 0, 1, 1, 1])
    # 2 of the last 3 readings: on through the one-reading gap, off after two quiet readings
    assert sustained(alarm, ids, 2, 3).astype(int).tolist() == [0, 1, 1, 1, 0, 0, 0, 0, 1, 1]
    # a new episode starts its window afresh: its first reading alone is 1 of 1, not 3 of 3
    assert not sustained(np.ones(4), np.array([0, 0, 1, 1]), 3, 3)[2]
    with pytest.raises(ValueError, match="window_readings"):
        sustained(alarm, ids, 3, 2)


def test_an_off_delay_merges_a_flickering_alarm_into_one_event():
    alarm, ids, rul = series(episode(200, [(100, 103), (106, 109), (0, 30)]))
    in_a_row = episode_events(alarm, ids, rul, 1.0, HORIZON, k=2)
    held = episode_events(alarm, ids, rul, 1.0, HORIZON, k=2, n=5)
    assert in_a_row[0]["false_alarms"] == 2 and held[0]["false_alarms"] == 1
    assert in_a_row[0]["lead_time_h"] == held[0]["lead_time_h"] == 29.0


def test_known_lead_times_and_false_alarms():
    alarm, ids, rul = series(
        episode(200, [(0, 30)]),  # warned 30 h ahead
        episode(200, [(0, 10), (100, 105)]),  # warned 10 h ahead (< 24 h) + one false alarm
        episode(200, []),  # missed: lead 0 h
        episode(200, [(150, 151), (20, 40)], failure=False),  # no failure: the alarms are false
    )
    records = episode_events(alarm, ids, rul, 1.0, HORIZON, k=2, warning_lead_hours=24)
    assert [r["failure"] for r in records] == [True, True, True, False]
    # k = 2: the sustained alarm starts one reading after the row alarm
    assert [r["lead_time_h"] for r in records[:3]] == [29.0, 9.0, 0.0]
    assert [r["warned"] for r in records] == [True, False, False, False]
    assert [r["false_alarms"] for r in records] == [0, 1, 0, 2]
    summary = event_summary(records)
    assert summary["warned_24h_fraction"] == pytest.approx(1 / 3)
    assert summary["false_alarms_per_1000h"] == pytest.approx(1000 * 3 / 800)
    assert summary["median_lead_time_h"] == 9.0


def test_an_alarm_that_starts_before_the_window_and_stays_on_is_a_false_alarm_and_a_warning():
    alarm, ids, rul = series(episode(100, [(0, 60)]))
    (record,) = episode_events(alarm, ids, rul, 0.5, HORIZON, k=1)
    assert record["false_alarms"] == 1 and record["lead_time_h"] == HORIZON and record["warned"]
    assert record["hours"] == 50.0


def test_bootstrap_interval_is_seeded_and_brackets_the_group_means():
    groups = np.repeat(np.arange(5), 4)
    values = np.repeat([1.0, 2.0, 3.0, 4.0, 5.0], 4)

    def mean(rows):
        return float(values[rows].mean())

    lo, hi = bootstrap_interval(groups, mean, resamples=300, seed=7, level=0.9)
    assert (lo, hi) == bootstrap_interval(groups, mean, resamples=300, seed=7, level=0.9)
    assert 1.0 <= lo < 3.0 < hi <= 5.0
    narrow = bootstrap_interval(groups, mean, resamples=300, seed=7, level=0.5)
    assert lo <= narrow[0] <= narrow[1] <= hi
    assert bootstrap_interval(np.zeros(4), mean, 100, 0) == (None, None)  # one group: none
