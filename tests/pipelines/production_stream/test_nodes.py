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


def test_an_unknown_scenario_is_refused_in_one_line(machine, tiny_params, tiny_splits):
    with pytest.raises(
        ValueError, match="scenario 'sensor_drift' is not one of none, sensor_offset"
    ):
        run(machine, tiny_params, tiny_splits, scenario="sensor_drift")
