"""The production stream continues the simulator after the test period: daily batches without
labels, labels only once an episode has failed, scenarios applied from their start day only."""

from __future__ import annotations

import pandas as pd
import pytest

from pdm_kedro import contract as c
from pdm_kedro.pipelines.production_stream.nodes import simulate_production_stream

STREAM = {"days": 12, "scenario": "none", "start_day": 6, "size": 8.0, "seed": 7}


def run(machine, tiny_params, tiny_splits, **changes):
    return simulate_production_stream(
        tiny_splits[2],
        machine,
        tiny_params["simulation"],
        tiny_params["labels"],
        {**STREAM, **changes},
    )


def test_batches_follow_the_test_period_day_by_day_without_labels(
    machine, tiny_params, tiny_splits
):
    batches, labels, report = run(machine, tiny_params, tiny_splits)
    test = tiny_splits[2]
    first = pd.Timestamp(min(batches))
    assert first == test[c.TIMESTAMP].max().normalize() + pd.Timedelta(days=1)
    assert len(labels) == STREAM["days"] and set(batches) <= set(labels)
    for day, batch in batches.items():
        assert not set(c.LABEL_COLUMNS) & set(batch.columns)
        assert (pd.to_datetime(batch[c.TIMESTAMP]).dt.strftime("%Y-%m-%d") == day).all()
    rows = pd.concat(batches.values())
    assert rows[c.EPISODE].min() > test[c.EPISODE].max()
    assert report["rows"] == len(rows) and report["change_day"] is None
    # same seed, same stream
    again = run(machine, tiny_params, tiny_splits)[0]
    pd.testing.assert_frame_equal(pd.concat(again.values()), rows)


def test_labels_arrive_on_the_day_the_episode_fails(machine, tiny_params, tiny_splits):
    batches, labels, report = run(machine, tiny_params, tiny_splits)
    known = pd.concat([f for f in labels.values() if len(f)], ignore_index=True)
    assert report["failures"] >= 1 and len(known) == report["labelled_rows"]
    for day, frame in labels.items():
        for _, rows in frame.groupby(c.EPISODE):
            last = rows.sort_values(c.TIMESTAMP).iloc[-1]
            assert last[c.RUL] == 0 and last[c.TIMESTAMP].strftime("%Y-%m-%d") == day
    # the episode still running at the end has no labels yet
    rows = pd.concat(batches.values())
    assert rows[c.EPISODE].max() not in set(known[c.EPISODE])


def test_sensor_offset_starts_on_its_day_and_only_on_its_sensor(machine, tiny_params, tiny_splits):
    base = pd.concat(run(machine, tiny_params, tiny_splits)[0].values(), ignore_index=True)
    batches, _, report = run(machine, tiny_params, tiny_splits, scenario="sensor_offset")
    shifted = pd.concat(batches.values(), ignore_index=True)
    sensor = machine["sensors"][0]
    after = shifted[c.TIMESTAMP] >= pd.Timestamp(report["change_day"])
    diff = shifted[sensor["name"]] - base[sensor["name"]]
    assert diff[~after].abs().max() == 0
    assert diff[after].dropna().round(9).eq(round(8.0 * sensor["noise"], 9)).all()
    other = machine["sensors"][1]["name"]
    pd.testing.assert_series_equal(shifted[other], base[other])


def test_faster_wear_shortens_the_lives_after_the_change(machine, tiny_params, tiny_splits):
    _, _, none = run(machine, tiny_params, tiny_splits, days=30, start_day=0)
    _, _, fast = run(
        machine, tiny_params, tiny_splits, days=30, start_day=0, scenario="faster_wear", size=1.0
    )
    assert fast["failures"] > none["failures"]


def test_every_labelled_life_is_one_of_its_process_and_the_overhaul_cuts_the_running_one(
    machine, tiny_params, tiny_splits
):
    """No episode is stretched or squeezed to end at a segment's end (the simulator's last
    episode absorbs its remainder): each labelled life lies in its process's life range (halved
    after ``faster_wear``), and the episodes running at the overhaul and at the end are cut."""
    batches, labels, report = run(
        machine, tiny_params, tiny_splits, days=30, start_day=10, scenario="faster_wear", size=1.0
    )
    known = pd.concat([f for f in labels.values() if len(f)], ignore_index=True)
    readings = pd.concat(batches.values(), ignore_index=True)
    life = tiny_params["simulation"]["life_hours"]
    change = pd.Timestamp(report["change_day"])
    hours_per_row = machine["sampling_interval_min"] / 60.0
    sides = {True: 0, False: 0}
    for _, rows in known.groupby(c.EPISODE):
        hours = rows[c.RUL].iloc[0] + hours_per_row  # rul counts down to 0 at the last reading
        before = bool(rows[c.TIMESTAMP].max() < change)
        scale = 1.0 if before else 2.0
        low, high = life["min"] / scale, life["max"] / scale
        assert low - hours_per_row <= hours <= high + hours_per_row, (before, hours)
        sides[before] += 1
    assert sides[True] >= 1 and sides[False] >= 2
    running_at_change = readings.loc[readings[c.TIMESTAMP] < change, c.EPISODE].max()
    assert running_at_change not in set(known[c.EPISODE])
    assert readings[c.EPISODE].max() not in set(known[c.EPISODE])


def test_an_unknown_scenario_is_refused_in_one_line(machine, tiny_params, tiny_splits):
    with pytest.raises(
        ValueError, match="scenario 'sensor_drift' is not one of none, sensor_offset"
    ):
        run(machine, tiny_params, tiny_splits, scenario="sensor_drift")
