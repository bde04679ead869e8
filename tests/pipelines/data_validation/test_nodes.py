"""Validation: every bad-input path gets a clear error or a quarantine that keeps every row."""

import numpy as np
import pandas as pd
import pytest

from pdm_kedro import contract as c
from pdm_kedro.pipelines.data_validation.nodes import (
    DataValidationError,
    combine_validation_reports,
    validate_readings,
)


@pytest.fixture()
def raw(tiny_splits) -> pd.DataFrame:
    return tiny_splits[0].copy()


@pytest.fixture()
def strict_machine(machine) -> dict:
    return {**machine, "on_invalid": "fail"}


def _validate(raw, machine, tiny_params, split="train"):
    return validate_readings(raw, machine, tiny_params["validation"], split)


def test_clean_simulated_split_passes_untouched(raw, machine, tiny_params):
    valid, quarantined, report = _validate(raw, machine, tiny_params)
    pd.testing.assert_frame_equal(valid, raw.reset_index(drop=True))
    assert quarantined.empty and c.QUARANTINE_REASON in quarantined.columns
    assert report["rows_in"] == report["rows_valid"] == len(raw)


def test_missing_column_fails_naming_machine_split_and_column(raw, machine, tiny_params):
    with pytest.raises(DataValidationError) as err:
        _validate(raw.drop(columns=["current"]), machine, tiny_params, "val")
    message = str(err.value)
    assert "motor_siemens_1la7_001" in message and "split val" in message
    assert "'current'" in message and "column is missing" in message


def test_wrong_dtype_fails_even_in_quarantine_mode(raw, machine, tiny_params):
    raw["speed"] = raw["speed"].astype(str)
    with pytest.raises(DataValidationError, match=r"'speed'.*dtype_is_numeric.*found dtype"):
        _validate(raw, machine, tiny_params)


def test_empty_split_fails_clearly(raw, machine, tiny_params):
    with pytest.raises(DataValidationError, match="split test .* is empty"):
        _validate(raw.iloc[:0], machine, tiny_params, "test")


def test_out_of_range_in_fail_mode_names_column_check_count_and_rows(
    raw, strict_machine, tiny_params
):
    raw.loc[[10, 11, 12], "vibration_rms"] = 99.0  # physical max 45 mm/s
    with pytest.raises(DataValidationError) as err:
        _validate(raw, strict_machine, tiny_params)
    message = str(err.value)
    assert "'vibration_rms'" in message and "in_physical_range[0.0, 45.0] mm/s" in message
    assert "3 rows" in message and "[10, 11, 12]" in message


def test_out_of_range_in_quarantine_mode_keeps_every_row(raw, machine, tiny_params):
    raw.loc[[10, 11, 12], "vibration_rms"] = 99.0
    valid, quarantined, report = _validate(raw, machine, tiny_params)
    assert len(valid) + len(quarantined) == len(raw)
    assert len(quarantined) == 3
    assert (quarantined["vibration_rms"] == 99.0).all()
    assert quarantined[c.QUARANTINE_REASON].str.contains("vibration_rms:in_physical_range").all()
    assert report["rows_quarantined"] == 3


def test_nan_burst_is_quarantined_but_isolated_nans_pass(raw, machine, tiny_params):
    max_run = tiny_params["validation"]["max_null_run"]
    raw.loc[100 : 100 + max_run, "current"] = np.nan  # max_run + 1 consecutive NaN
    raw.loc[300, "current"] = np.nan  # isolated: allowed
    valid, quarantined, _ = _validate(raw, machine, tiny_params)
    assert len(quarantined) == max_run + 1
    assert quarantined[c.QUARANTINE_REASON].str.contains("no_null_run_longer_than").all()
    assert len(valid) == len(raw) - max_run - 1


def test_duplicate_and_backward_timestamps_are_caught(raw, strict_machine, machine, tiny_params):
    raw.loc[50, c.TIMESTAMP] = raw.loc[49, c.TIMESTAMP]
    raw.loc[80, c.TIMESTAMP] = raw.loc[70, c.TIMESTAMP] - pd.Timedelta(hours=1)
    with pytest.raises(DataValidationError) as err:
        _validate(raw, strict_machine, tiny_params)
    assert "timestamp_unique_within_episode" in str(err.value)
    assert "timestamp_increasing_within_episode" in str(err.value)
    _, quarantined, _ = _validate(raw, machine, tiny_params)
    assert len(quarantined) == 2


def test_inf_and_bad_label_domain_are_caught(raw, machine, tiny_params):
    raw.loc[5, "speed"] = np.inf
    raw.loc[6, c.FAILURE_WITHIN_HORIZON] = 2
    raw.loc[7, c.RUL] = -1.0
    _, quarantined, report = _validate(raw, machine, tiny_params)
    assert len(quarantined) == 3
    checks = {(f["column"], f["check"]) for f in report["failures"]}
    assert ("speed", "finite") in checks
    assert (c.FAILURE_WITHIN_HORIZON, "isin([0, 1])") in checks
    assert (c.RUL, "greater_than_or_equal_to(0)") in checks


def test_labels_are_optional_in_the_contract(raw, machine, tiny_params):
    unlabelled = raw.drop(columns=list(c.LABEL_COLUMNS) + [c.REGIME])
    valid, quarantined, _ = _validate(unlabelled, machine, tiny_params)
    assert len(valid) == len(raw) and quarantined.empty


def test_machine_report_adds_up(tiny_splits, machine, tiny_params):
    train, val, test = (s.copy() for s in tiny_splits)
    train.loc[3, "current"] = -1.0
    reports = [_validate(s, machine, tiny_params, n)[2] for s, n in
               zip((train, val, test), ("train", "val", "test"), strict=True)]  # fmt: skip
    report = combine_validation_reports(machine, *reports)
    assert report["rows_in"] == report["rows_valid"] + report["rows_quarantined"]
    assert report["rows_in"] == sum(len(s) for s in tiny_splits)
    assert report["status"] == "quarantined_rows" and report["rows_quarantined"] == 1
