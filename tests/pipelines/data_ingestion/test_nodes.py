"""data_ingestion nodes on tiny in-memory files: mapping, labels, splits, errors, capabilities."""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from pdm_kedro import contract as c
from pdm_kedro.pipelines.data_ingestion.nodes import (
    DataSourceError,
    derive_labels,
    match_partitions,
    report_source,
    split_source_readings,
    standardise_source_files,
)
from pdm_kedro.pipelines.data_ingestion.source import parse_file_source
from pdm_kedro.pipelines.data_validation.nodes import validate_readings

LABELS = {"failure_horizon_hours": 3}
SPLITS = {"train": 0.6, "val": 0.2, "test": 0.2}
VALIDATION = {"max_null_run": 6, "example_rows": 5}


def _ingest(files, machine):
    readings, final_rul = standardise_source_files(files, machine)
    labelled = derive_labels(readings, final_rul, machine, LABELS)
    return readings, final_rul, labelled


def test_partitions_match_by_name_stem_or_glob_in_natural_order():
    names = ["valve/10", "valve/2", "valve/1", "free", "RUL_FD001.txt"]
    assert match_partitions(names, "valve/*") == ["valve/1", "valve/2", "valve/10"]
    assert match_partitions(names, "RUL_FD001") == ["RUL_FD001.txt"]
    assert match_partitions(names, "missing") == []


def test_cycles_become_increasing_timestamps_and_episode_ids_stay_unique(cycle_files, engine):
    readings, final_rul, _ = _ingest(cycle_files, engine)
    assert pd.api.types.is_datetime64_any_dtype(readings[c.TIMESTAMP])
    assert pd.api.types.is_integer_dtype(readings[c.EPISODE])
    train = readings[readings["source_role"] == "train"]
    test = readings[readings["source_role"] == "test"]
    assert sorted(train[c.EPISODE].unique()) == [1, 2, 3, 4]
    assert sorted(test[c.EPISODE].unique()) == [1001, 1002]  # test units 1, 2 shifted
    assert sorted(test["source_episode"].unique()) == [1, 2]
    # one cycle = 60 nominal minutes, episodes laid end to end
    step = train.groupby(c.EPISODE)[c.TIMESTAMP].diff().dropna().unique()
    assert list(step) == [pd.Timedelta(hours=1)]
    assert train[c.TIMESTAMP].is_monotonic_increasing
    assert final_rul.set_index(c.EPISODE)["final_rul"].to_dict() == {1001: 20.0, 1002: 3.0}


def test_rul_from_run_to_failure_and_final_rul_is_capped(cycle_files, engine):
    _, _, labelled = _ingest(cycle_files, engine)
    unit3 = labelled[(labelled["source_role"] == "train") & (labelled[c.EPISODE] == 3)]
    expected = np.minimum(np.arange(14, -1, -1), 8)  # 15 cycles, cap 8
    np.testing.assert_array_equal(unit3[c.RUL].to_numpy(), expected)
    test = labelled[labelled["source_role"] == "test"].groupby(c.EPISODE)
    last = test.tail(1).set_index(c.EPISODE)[c.RUL]
    assert last.to_dict() == {1001: 8.0, 1002: 3.0}  # 20 capped at 8; 3 as given
    first_1002 = test.head(1).set_index(c.EPISODE)[c.RUL][1002]
    assert first_1002 == 8.0  # 3 + 8 cycles remaining = 11, capped
    fwh = labelled[c.FAILURE_WITHIN_HORIZON]
    assert fwh.dtype == np.int8
    np.testing.assert_array_equal(fwh.to_numpy(), (labelled[c.RUL] <= 3).astype(int).to_numpy())


def test_file_split_keeps_episodes_apart_is_seeded_and_meets_the_contract(cycle_files, engine):
    _, _, labelled = _ingest(cycle_files, engine)
    train, val, test = split_source_readings(labelled, engine, SPLITS)
    again = split_source_readings(labelled, engine, SPLITS)
    pd.testing.assert_frame_equal(val, again[1])
    assert set(train[c.EPISODE]) | set(val[c.EPISODE]) == {1, 2, 3, 4}
    assert not set(train[c.EPISODE]) & set(val[c.EPISODE])
    assert val[c.EPISODE].nunique() == 1  # 25 % of 4 units
    assert set(test[c.EPISODE]) == {1001, 1002}
    for name, split in zip(c.SPLITS, (train, val, test), strict=True):
        valid, quarantined, report = validate_readings(split, engine, VALIDATION, name)
        assert report["rows_quarantined"] == 0 and len(valid) == len(split)


def test_time_split_takes_the_first_rows_of_each_file_and_fills_known_normal_labels(
    skab_files, pump
):
    _, _, labelled = _ingest(skab_files, pump)
    train, val, test = split_source_readings(labelled, pump, SPLITS)
    assert train.groupby(c.EPISODE).size().tolist() == [5, 5, 5]
    assert test.groupby(c.EPISODE).size().tolist() == [7, 5, 6]  # files 1, 2, 10 in that order
    assert (
        train.groupby(c.EPISODE)[c.TIMESTAMP].max() < test.groupby(c.EPISODE)[c.TIMESTAMP].min()
    ).all()
    assert set(val["source_file"]) == {"free"} and (val[c.ANOMALY] == 0).all()
    assert test[c.ANOMALY].dtype == np.int8 and test[c.ANOMALY].sum() == 4 + 1 + 4
    assert c.RUL not in labelled.columns  # never invented
    for name, split in zip(c.SPLITS, (train, val, test), strict=True):
        assert validate_readings(split, pump, VALIDATION, name)[2]["rows_quarantined"] == 0


def test_report_names_the_trained_families_and_why_the_others_are_not(skab_files, pump):
    _, final_rul, labelled = _ingest(skab_files, pump)
    report = report_source(labelled, final_rul, pump)
    families = report["families"]
    assert families["anomaly"]["trained"] and families["forecasting"]["trained"]
    assert not families["regression"]["supported"]
    assert "no RUL" in families["regression"]["why"]
    assert report["labels"] == {
        "rul": "absent",
        "failure_within_horizon": "absent",
        "anomaly": "given",
    }
    noted = copy.deepcopy(pump)
    noted["source"]["families"] = ["anomaly"]
    noted["source"]["family_notes"] = {"forecasting": "files too short for hourly means"}
    forecasting = report_source(labelled, final_rul, noted)["families"]["forecasting"]
    assert forecasting == {
        "trained": False,
        "supported": True,
        "why": "files too short for hourly means",
    }
    asked_too_much = copy.deepcopy(pump)
    asked_too_much["source"]["families"] = ["anomaly", "regression"]
    with pytest.raises(ValueError, match="regression"):
        report_source(labelled, final_rul, asked_too_much)


def test_snapshot_table_without_time_order_still_gets_classification(engine):
    rng = np.random.default_rng(0)
    n = 60
    table = pd.DataFrame(
        {
            "s_temp": 640 + rng.normal(size=n),
            "s_speed": 2388 + rng.normal(size=n),
            "failed": (rng.random(n) < 0.3).astype(int),
        }
    )
    machine = copy.deepcopy(engine)
    machine["source"] = {
        "type": "file",
        "files": {"data": "snapshots"},
        "columns": {"time_kind": "none", "labels": {"failure_within_horizon": "failed"}},
        "split": {"method": "random", "seed": 1},
        "families": ["classification"],
    }
    readings, final_rul, labelled = _ingest({"snapshots": table}, machine)
    assert labelled[c.EPISODE].is_unique  # every row its own episode
    train, val, test = split_source_readings(labelled, machine, SPLITS)
    assert len(train) + len(val) + len(test) == n
    assert validate_readings(train, machine, VALIDATION, "train")[2]["rows_quarantined"] == 0
    families = report_source(labelled, final_rul, machine)["families"]
    assert families["classification"]["trained"]
    assert families["forecasting"]["why"] == "no time order (snapshots)"
    assert not families["regression"]["supported"]


def test_a_bad_value_names_the_file_column_and_rows(cycle_files, engine):
    bad = cycle_files["train"].astype(object)
    bad.iloc[[3, 7], 2] = "n/a"  # column 2 is s_temp
    cycle_files["train"] = bad
    with pytest.raises(DataSourceError) as err:
        standardise_source_files(cycle_files, engine)
    message = str(err.value)
    assert "'train'" in message and "'s_temp'" in message
    assert "[4, 8]" in message and "n/a" in message


def test_a_missing_column_names_the_file_and_the_column(skab_files, pump):
    skab_files["valve/2"] = skab_files["valve/2"].drop(columns=["Speed"])
    with pytest.raises(DataSourceError, match=r"File 'valve/2'.*'Speed' \(for sensor s_speed\)"):
        standardise_source_files(skab_files, pump)


def test_unreadable_dates_are_reported_with_their_rows(skab_files, pump):
    skab_files["valve/10"].loc[2, "datetime"] = "yesterday"
    with pytest.raises(DataSourceError, match=r"'valve/10', column 'datetime'.*\[3\]"):
        standardise_source_files(skab_files, pump)


def test_source_config_errors_are_explicit():
    with pytest.raises(ValidationError, match="needs source.files"):
        parse_file_source(
            {
                "type": "file",
                "files": {"data": "x"},
                "columns": {"time_kind": "none"},
                "split": {"method": "files"},
            }
        )
    with pytest.raises(ValidationError, match="cycle_minutes"):
        parse_file_source(
            {
                "type": "file",
                "files": {"data": "x"},
                "columns": {"time": "cycle", "time_kind": "cycle"},
                "split": {"method": "episode"},
            }
        )


def _snapshot_machine(engine, split):
    machine = copy.deepcopy(engine)
    machine["source"] = {
        "type": "file",
        "files": {"data": "snapshots"},
        "columns": {
            "time_kind": "none",
            "categorical": ["line"],
            "labels": {"failure_within_horizon": "failed"},
        },
        "split": split,
        "families": ["classification"],
    }
    return machine


def _snapshot_table(n, rate, seed=0):
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "s_temp": 640 + rng.normal(size=n),
            "s_speed": 2388 + rng.normal(size=n),
            "line": rng.choice(["A", "B", None], size=n),
            "failed": (np.arange(n) < round(n * rate)).astype(int),
        }
    )


def test_snapshot_split_is_stratified_with_the_sources_own_fractions(engine):
    n, rate = 1000, 0.05
    fractions = {"train": 0.5, "val": 0.25, "test": 0.25}  # not the fleet's SPLITS (60/20/20)
    machine = _snapshot_machine(
        engine,
        {"method": "random", "seed": 3, "fractions": fractions,
         "stratify": "failure_within_horizon"},
    )  # fmt: skip
    _, _, labelled = _ingest({"snapshots": _snapshot_table(n, rate)}, machine)
    parts = dict(zip(c.SPLITS, split_source_readings(labelled, machine, SPLITS), strict=True))
    for name, part in parts.items():  # the source's fractions, within a row per label class
        assert abs(len(part) - fractions[name] * n) <= 2
    for part in parts.values():  # every split keeps the failure rate (within one row)
        positives = int(part[c.FAILURE_WITHIN_HORIZON].sum())
        assert abs(positives - rate * len(part)) <= 1
    rows = pd.concat(parts.values())
    assert rows[c.EPISODE].is_unique and len(rows) == n  # every row once
    again = split_source_readings(labelled, machine, SPLITS)
    pd.testing.assert_frame_equal(again[2], parts["test"])  # seeded
    # without stratify a rare label can miss a split's rate by far more than one row
    plain = _snapshot_machine(engine, {"method": "random", "seed": 3, "fractions": fractions})
    rates = [
        p[c.FAILURE_WITHIN_HORIZON].mean() for p in split_source_readings(labelled, plain, SPLITS)
    ]
    assert max(rates) - min(rates) > 0.002


def test_snapshot_categorical_columns_are_carried_as_text(engine):
    machine = _snapshot_machine(engine, {"method": "random", "seed": 1})
    readings, _, _ = _ingest({"snapshots": _snapshot_table(30, 0.2)}, machine)
    assert set(readings["category__line"]) <= {"A", "B", "<missing>"}
    assert "<missing>" in set(readings["category__line"])
    table = _snapshot_table(30, 0.2).drop(columns=["line"])
    with pytest.raises(DataSourceError, match=r"'line' \(for categorical line\)"):
        standardise_source_files({"snapshots": table}, machine)


def test_snapshot_split_settings_are_checked():
    base = {"type": "file", "files": {"data": "x"}, "columns": {"time_kind": "none"}}
    with pytest.raises(ValidationError, match="must sum to 1"):
        parse_file_source(
            {**base, "split": {"method": "random",
                               "fractions": {"train": 0.7, "val": 0.2, "test": 0.2}}}
        )  # fmt: skip
    with pytest.raises(ValidationError, match="unknown label 'failed'"):
        parse_file_source({**base, "split": {"method": "random", "stratify": "failed"}})
    with pytest.raises(ValidationError, match="method 'random' only"):
        parse_file_source(
            {**base, "split": {"method": "episode", "stratify": "failure_within_horizon"}}
        )
    with pytest.raises(ValidationError, match="snapshot tables"):
        parse_file_source(
            {**base, "columns": {"time": "t", "categorical": ["line"]},
             "split": {"method": "episode"}}
        )  # fmt: skip
