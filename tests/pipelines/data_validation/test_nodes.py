"""Validation: every bad-input path gets a clear error or a quarantine that keeps every row."""

import numpy as np
import pandas as pd
import pytest

from pdm_kedro import contract as c
from pdm_kedro.pipelines.data_validation.nodes import (
    DataValidationError,
    combine_validation_reports,
    fit_plausibility_reference,
    gather_partitions,
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
    with pytest.raises(DataValidationError, match="split test .* is empty .*header-only"):
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


def test_duplicate_timestamps_are_caught(raw, strict_machine, machine, tiny_params):
    raw.loc[50, c.TIMESTAMP] = raw.loc[49, c.TIMESTAMP]
    with pytest.raises(DataValidationError, match="timestamp_unique_within_episode.* rows"):
        _validate(raw, strict_machine, tiny_params)
    _, quarantined, report = _validate(raw, machine, tiny_params)
    assert len(quarantined) == 1 and report["rows_in"] == len(raw)


def test_unsorted_rows_within_an_episode_are_sorted_and_counted(raw, strict_machine, tiny_params):
    shuffled = raw.iloc[[*range(0, 40), 45, 44, 43, 42, 41, 40, *range(46, len(raw))]]
    valid, quarantined, report = _validate(shuffled, strict_machine, tiny_params)
    pd.testing.assert_frame_equal(valid, raw.reset_index(drop=True))
    assert quarantined.empty
    assert report["rows_reordered"] == 5  # 44, 43, 42, 41, 40 come after 45
    assert report["rows_valid"] == len(raw)


def test_sorting_keeps_the_order_of_episodes(raw, strict_machine, tiny_params):
    episodes = raw[c.EPISODE].unique()
    assert len(episodes) >= 2
    second_first = pd.concat(
        [raw[raw[c.EPISODE] != episodes[0]], raw[raw[c.EPISODE] == episodes[0]]]
    )
    valid, _, report = _validate(second_first, strict_machine, tiny_params)
    assert report["rows_reordered"] == 0
    pd.testing.assert_frame_equal(valid, second_first.reset_index(drop=True))


def test_a_corrupted_tiny_value_is_a_bad_row(raw, strict_machine, machine, tiny_params):
    raw.loc[[7, 9], "bearing_temperature"] = 1e-100  # a corrupted page: 0 degC instead of 58
    raw.loc[8, "bearing_temperature"] = 0.0  # a true zero is a reading
    with pytest.raises(DataValidationError) as err:
        _validate(raw, strict_machine, tiny_params)
    message = str(err.value)
    assert "'bearing_temperature'" in message and "plausible_magnitude" in message
    assert "2 rows" in message and "[7, 9]" in message
    valid, quarantined, report = _validate(raw, machine, tiny_params)
    assert list(quarantined["bearing_temperature"]) == [1e-100, 1e-100]
    assert report["rows_valid"] + report["rows_quarantined"] == report["rows_in"] == len(raw)


def test_values_orders_of_magnitude_off_the_train_reference_are_bad_rows(raw, machine, tiny_params):
    validation = tiny_params["validation"]
    reference = fit_plausibility_reference(raw, machine, validation)
    ref = reference["sensors"]["current"]
    assert abs(ref["median"] - 22.1) < 5 and 0 < ref["scale"] < 5
    val = raw.copy()
    val["current"] = val["current"].astype(float)
    median = ref["median"]
    limit = float((val["current"] - median).abs().max()) + 1.0  # every clean row within it
    val.loc[3, "current"] = median + 2 * limit  # beyond the limit, inside [0, 88.4] A
    val.loc[4, "current"] = median + 0.9 * limit  # within it
    assert val.loc[3, "current"] < 88.4
    tight = {"sensors": {"current": {"median": median, "scale": limit / 1000}}}
    _, quarantined, _ = validate_readings(val, machine, validation, "val", reference=tight)
    assert list(quarantined["current"]) == [median + 2 * limit]
    reasons = quarantined[c.QUARANTINE_REASON]
    assert reasons.str.contains("current:within_1000_train_scales_of_train_median").all()
    # the fitted reference accepts the same values (within the physical range and its scales)
    _, quarantined, _ = validate_readings(val, machine, validation, "val", reference=reference)
    assert quarantined.empty


def test_the_train_reference_resists_corrupted_values(raw, machine, tiny_params):
    corrupted = raw.copy()
    corrupted.loc[corrupted.index[::20], "bearing_temperature"] = 1e-100
    corrupted.loc[corrupted.index[1::20], "bearing_temperature"] = 1e9
    clean = fit_plausibility_reference(raw, machine, tiny_params["validation"])["sensors"]
    dirty = fit_plausibility_reference(corrupted, machine, tiny_params["validation"])["sensors"]
    ref, got = clean["bearing_temperature"], dirty["bearing_temperature"]
    assert abs(got["median"] - ref["median"]) < ref["scale"]
    assert got["scale"] < 2 * ref["scale"]


def test_time_zone_aware_timestamps_become_naive_utc_and_are_counted(
    raw, strict_machine, tiny_params
):
    aware = raw.copy()
    aware[c.TIMESTAMP] = aware[c.TIMESTAMP].dt.tz_localize("UTC").dt.tz_convert("Europe/Berlin")
    valid, _, report = _validate(aware, strict_machine, tiny_params)
    pd.testing.assert_series_equal(valid[c.TIMESTAMP], raw[c.TIMESTAMP].reset_index(drop=True))
    assert report["timezone_converted_rows"] == len(raw)
    reports = [{**report, "split": split} for split in ("train", "val", "test")]
    combined = combine_validation_reports(strict_machine, *reports)
    assert combined["timezone_converted_rows"] == 3 * len(raw)


def test_missing_value_tokens_are_missing_and_counted(raw, strict_machine, tiny_params):
    text = raw.copy()
    text["current"] = text["current"].map(repr).astype(object)
    text.loc[5, "current"], text.loc[9, "current"], text.loc[20, "current"] = "n/a", "NULL", "-nan"
    valid, _, report = _validate(text, strict_machine, tiny_params)
    assert valid["current"].dtype == np.float64
    assert valid.loc[[5, 9, 20], "current"].isna().all()
    already_missing = int(raw["current"].isna().sum())  # written as 'nan', a token too
    assert report["missing_tokens"] == {"current": 3 + already_missing}
    assert report["missing_values"]["current"] == raw["current"].isna().sum() + 3


def test_unknown_text_in_a_sensor_column_is_still_a_dtype_error(raw, machine, tiny_params):
    raw["current"] = raw["current"].map(repr).astype(object)
    raw.loc[5, "current"], raw.loc[6, "current"] = "n/a", "12,5"
    with pytest.raises(DataValidationError, match=r"'current'.*dtype_is_numeric"):
        _validate(raw, machine, tiny_params)


def test_an_empty_incoming_partition_is_named(raw):
    with pytest.raises(DataValidationError, match="2026-01-02"):
        gather_partitions({"2026-01-01": raw.iloc[:5], "2026-01-02": raw.iloc[:0]})


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
