"""Retraining data (``pdm_kedro.splits``): the matured production rows join the training data,
the newest matured episodes are held out as the test split, nothing leaks across."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pdm_kedro import contract as c
from pdm_kedro.splits import (
    align_hidden_state,
    collect_matured_production,
    extend_splits_with_production,
)

MACHINE = {"machine_id": "m1"}
SPLITS = {"train": 0.7, "val": 0.15, "test": 0.15}
ON = {"use_production": True, "holdout_days": 4, "train_fraction": 1.0}


def episodes(first: int, count: int, start: str, hours: int = 48) -> pd.DataFrame:
    """``count`` back-to-back episodes of ``hours`` hourly rows, numbered from ``first``."""
    frames, t0 = [], pd.Timestamp(start)
    for k in range(count):
        stamps = t0 + pd.to_timedelta(np.arange(hours) + k * hours, unit="h")
        rul = np.arange(hours)[::-1].astype(float)
        frames.append(
            pd.DataFrame(
                {
                    c.TIMESTAMP: stamps,
                    c.EPISODE: first + k,
                    c.REGIME: 0,
                    "s1": np.linspace(0, 1, hours),
                    c.RUL: rul,
                    c.FAILURE_WITHIN_HORIZON: rul <= 12,
                    c.ANOMALY: False,
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


@pytest.fixture()
def source():
    history = episodes(0, 10, "2025-01-01")
    ids = history[c.EPISODE]
    return history[ids < 7], history[ids.between(7, 8)], history[ids == 9]


def production_partitions(first_episode: int, count: int, start: str, matured: int):
    rows = episodes(first_episode, count, start)
    log = rows.drop(columns=list(c.LABEL_COLUMNS)).assign(**{"failure.probability": 0.1})
    labels = rows[rows[c.EPISODE] < first_episode + matured][
        [c.TIMESTAMP, c.EPISODE, *c.LABEL_COLUMNS]
    ]
    day = lambda f: f[c.TIMESTAMP].dt.strftime("%Y-%m-%d")  # noqa: E731
    return (
        {d: (lambda p=p: p) for d, p in log.groupby(day(log))},
        {d: p for d, p in labels.groupby(day(labels))},
        rows,
    )


def test_only_matured_labelled_scored_rows_are_collected():
    log, labels, rows = production_partitions(10, 5, "2025-02-01", matured=3)
    matured = collect_matured_production(log, labels, MACHINE, ON)
    assert set(matured[c.EPISODE]) == {10, 11, 12}  # the running episodes have no labels yet
    assert len(matured) == 3 * 48
    expected = rows[rows[c.EPISODE] < 13].reset_index(drop=True)
    pd.testing.assert_frame_equal(
        matured[expected.columns].reset_index(drop=True), expected, check_dtype=False
    )
    assert collect_matured_production(log, labels, MACHINE, ON | {"use_production": False}).empty
    assert collect_matured_production({}, {}, MACHINE, ON).empty


def test_a_label_given_twice_is_an_error_naming_the_machine():
    log, labels, _ = production_partitions(10, 2, "2025-02-01", matured=1)
    first = next(iter(labels.values()))
    labels["again"] = first
    with pytest.raises(ValueError, match="m1: labels/ holds 24 rows twice"):
        collect_matured_production(log, labels, MACHINE, ON)


def test_the_newest_matured_episodes_are_the_holdout_and_nothing_leaks(source):
    log, labels, _ = production_partitions(10, 6, "2025-02-01", matured=5)
    matured = collect_matured_production(log, labels, MACHINE, ON)
    train, val, test, report = extend_splits_with_production(*source, matured, SPLITS, ON, MACHINE)
    # newest labelled reading: end of episode 14; episodes starting within 4 days: 13 and 14
    assert sorted(test[c.EPISODE].unique()) == [13, 14]
    assert report["holdout_episodes"] == [13, 14] and report["production_rows_trained"] == 3 * 48
    every = [set(part[c.EPISODE]) for part in (train, val, test)]
    assert not (every[0] & every[1]) and not (every[0] & every[2]) and not (every[1] & every[2])
    assert set().union(*every) == set(range(15))  # the source's 10 episodes + 5 matured
    # the earlier matured production episodes are trained on; val is the newest source
    # episodes (round(13 * 0.15 / 0.85) = 2); both precede the holdout, so the models'
    # trained_until precedes it
    assert {10, 11, 12} <= every[0] and sorted(val[c.EPISODE].unique()) == [8, 9]
    assert max(train[c.TIMESTAMP].max(), val[c.TIMESTAMP].max()) < test[c.TIMESTAMP].min()
    # time_order: every older episode in time order, val the newest (production ones)
    by_time = extend_splits_with_production(
        *source, matured, SPLITS, ON | {"production_split": "time_order"}, MACHINE
    )
    assert by_time[0][c.TIMESTAMP].max() < by_time[1][c.TIMESTAMP].min()
    assert sorted(by_time[1][c.EPISODE].unique()) == [11, 12]
    assert by_time[3]["production_rows_trained"] == 48 and by_time[3]["production_rows_val"] == 96
    pd.testing.assert_frame_equal(by_time[2], test)  # the same holdout
    assert report["production_rows_val"] == 0 and report["production_split"] == "train"
    with pytest.raises(ValueError, match="m1: retraining_data.production_split"):
        extend_splits_with_production(
            *source, matured, SPLITS, ON | {"production_split": "val"}, MACHINE
        )
    assert list(train.columns) == list(source[0].columns)
    assert report["test"]["from"] == test[c.TIMESTAMP].min().isoformat()


def test_without_production_rows_the_source_splits_pass_through(source):
    log, labels, _ = production_partitions(10, 3, "2025-02-01", matured=3)
    matured = collect_matured_production(log, labels, MACHINE, ON)
    for params, rows in ((ON, pd.DataFrame()), (ON | {"use_production": False}, matured)):
        out = extend_splits_with_production(*source, rows, SPLITS, params, MACHINE)
        for got, want in zip(out[:3], source, strict=True):
            pd.testing.assert_frame_equal(got, want)
        assert out[3]["production_rows"] == 0


def test_train_fraction_keeps_the_oldest_share_of_whole_train_episodes(source):
    params = ON | {"use_production": False, "train_fraction": 0.3}
    first = extend_splits_with_production(*source, pd.DataFrame(), SPLITS, params, MACHINE)
    assert sorted(first[0][c.EPISODE].unique()) == [0, 1]  # round(7 * 0.3) oldest episodes
    assert first[3]["train_episodes_kept"] == 2 and first[3]["train"]["rows"] == 2 * 48
    pd.testing.assert_frame_equal(first[1], source[1])  # val and test untouched
    log, labels, _ = production_partitions(10, 6, "2025-02-01", matured=5)
    matured = collect_matured_production(log, labels, MACHINE, ON)
    full = extend_splits_with_production(*source, matured, SPLITS, ON, MACHINE)
    less = extend_splits_with_production(
        *source, matured, SPLITS, ON | {"train_fraction": 0.3}, MACHINE
    )
    assert sorted(less[0][c.EPISODE].unique()) == [0, 1, 2]  # round(11 * 0.3)
    for got, want in zip(less[1:3], full[1:3], strict=True):  # the same val and holdout
        pd.testing.assert_frame_equal(got, want)
    with pytest.raises(ValueError, match="m1: retraining_data.train_fraction"):
        extend_splits_with_production(
            *source, pd.DataFrame(), SPLITS, ON | {"train_fraction": 0}, MACHINE
        )


def test_train_episodes_caps_the_train_split_at_the_oldest_episodes(source):
    """The deliberately worse control: the fewest train episodes a run accepts (one)."""
    log, labels, _ = production_partitions(10, 6, "2025-02-01", matured=5)
    matured = collect_matured_production(log, labels, MACHINE, ON)
    full = extend_splits_with_production(*source, matured, SPLITS, ON, MACHINE)
    one = extend_splits_with_production(
        *source, matured, SPLITS, ON | {"train_episodes": 1}, MACHINE
    )
    assert sorted(one[0][c.EPISODE].unique()) == [0] and one[3]["train_episodes_kept"] == 1
    assert one[3]["train_episodes"] == 1
    for got, want in zip(one[1:3], full[1:3], strict=True):  # the same val and holdout
        pd.testing.assert_frame_equal(got, want)
    # with a fraction too: the smaller of the two; more than there are: all of them
    both = ON | {"train_fraction": 0.3, "train_episodes": 2}
    assert (
        extend_splits_with_production(*source, matured, SPLITS, both, MACHINE)[3][
            "train_episodes_kept"
        ]
        == 2
    )
    many = extend_splits_with_production(
        *source, matured, SPLITS, ON | {"train_episodes": 1000}, MACHINE
    )
    pd.testing.assert_frame_equal(many[0], full[0])
    with pytest.raises(ValueError, match="m1: retraining_data.train_episodes"):
        extend_splits_with_production(
            *source, pd.DataFrame(), SPLITS, ON | {"train_episodes": 0}, MACHINE
        )


def test_production_episode_ids_that_clash_with_the_source_are_an_error(source):
    log, labels, _ = production_partitions(9, 3, "2025-02-01", matured=3)
    matured = collect_matured_production(log, labels, MACHINE, ON)
    with pytest.raises(ValueError, match=r"m1: production episodes \[9\] reuse"):
        extend_splits_with_production(*source, matured, SPLITS, ON, MACHINE)


def test_hidden_state_follows_the_splits_and_is_empty_with_production_rows(source):
    hidden = [
        part[[c.TIMESTAMP, c.EPISODE]].assign(latent_wear=0.5, hours_since_repair=1.0)
        for part in source
    ]
    same = align_hidden_state(*source, *hidden)
    for got, want in zip(same, hidden, strict=True):
        pd.testing.assert_frame_equal(got.reset_index(drop=True), want.reset_index(drop=True))
    log, labels, _ = production_partitions(10, 3, "2025-02-01", matured=3)
    matured = collect_matured_production(log, labels, MACHINE, ON)
    train, val, test, _ = extend_splits_with_production(*source, matured, SPLITS, ON, MACHINE)
    assert all(h.empty for h in align_hidden_state(train, val, test, *hidden))


def test_production_weight_repeats_the_trained_production_episodes_under_new_ids(source):
    log, labels, _ = production_partitions(10, 6, "2025-02-01", matured=5)
    matured = collect_matured_production(log, labels, MACHINE, ON)
    plain = extend_splits_with_production(*source, matured, SPLITS, ON, MACHINE)
    weighted = extend_splits_with_production(
        *source, matured, SPLITS, ON | {"production_weight": 3}, MACHINE
    )
    train, report = weighted[0], weighted[3]
    assert report["production_weight"] == 3
    assert len(train) == len(plain[0]) + 2 * 3 * 48  # episodes 10-12, twice more each
    for original in (10, 11, 12):
        copies = [e for e in train[c.EPISODE].unique() if e % 15 == original and e != original]
        assert len(copies) == 2  # new ids after every id of train and holdout (max 14)
        rows = train[train[c.EPISODE] == copies[0]].drop(columns=c.EPISODE).reset_index(drop=True)
        again = train[train[c.EPISODE] == original].drop(columns=c.EPISODE).reset_index(drop=True)
        pd.testing.assert_frame_equal(rows, again)
    assert set(train[c.EPISODE]).isdisjoint(set(weighted[2][c.EPISODE]))  # not the holdout's
    for got, want in zip(weighted[1:3], plain[1:3], strict=True):  # the same val and holdout
        pd.testing.assert_frame_equal(got, want)
    with pytest.raises(ValueError, match="m1: retraining_data.production_weight"):
        extend_splits_with_production(
            *source, matured, SPLITS, ON | {"production_weight": 0}, MACHINE
        )
