"""The quarantine checked row by row: exactly the bad rows leave, every good row stays as it was."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pandas.testing as pdt
import pytest

from pdm_kedro import contract as c
from pdm_kedro.pipelines.data_validation.nodes import combine_validation_reports, validate_readings

VIBRATION_RANGE = "in_physical_range[0.0, 45.0] mm/s"
SPEED_RANGE = "in_physical_range[0.0, 1752.0] rpm"


@pytest.fixture()
def raw(tiny_splits) -> pd.DataFrame:
    # a non-default index: the node must work on positions, not on the caller's labels
    frame = tiny_splits[0].iloc[:600].copy()
    frame.index = frame.index + 1000
    return frame


def test_exactly_the_bad_rows_are_quarantined(raw, machine, tiny_params):
    positions = {
        17: ("vibration_rms", 99.0, f"vibration_rms:{VIBRATION_RANGE}"),
        18: ("speed", np.inf, f"speed:finite; speed:{SPEED_RANGE}"),
        250: (c.RUL, -1.0, f"{c.RUL}:greater_than_or_equal_to(0)"),
        401: (c.FAILURE_WITHIN_HORIZON, 2, f"{c.FAILURE_WITHIN_HORIZON}:isin([0, 1])"),
    }
    bad = raw.copy()
    for pos, (column, value, _) in positions.items():
        bad.iloc[pos, bad.columns.get_loc(column)] = value
    bad.iloc[402, bad.columns.get_loc("speed")] = np.inf  # two failures on one row...
    bad.iloc[402, bad.columns.get_loc("vibration_rms")] = 99.0
    valid, quarantined, report = validate_readings(bad, machine, tiny_params["validation"], "val")

    bad_positions = sorted([*positions, 402])
    expected_valid = bad.reset_index(drop=True).drop(index=bad_positions).reset_index(drop=True)
    pdt.assert_frame_equal(valid, expected_valid)
    expected_quarantine = bad.reset_index(drop=True).loc[bad_positions].reset_index(drop=True)
    pdt.assert_frame_equal(quarantined.drop(columns=[c.QUARANTINE_REASON]), expected_quarantine)
    reasons = quarantined[c.QUARANTINE_REASON].tolist()
    assert reasons[:4] == [reason for _, _, reason in positions.values()]
    # ...are both named once, sorted
    assert reasons[4] == f"speed:finite; speed:{SPEED_RANGE}; vibration_rms:{VIBRATION_RANGE}"
    assert report == {
        "split": "val",
        "rows_in": 600,
        "rows_valid": 595,
        "rows_quarantined": 5,
        "failures": report["failures"],
        "rows_reordered": 0,
        "timezone_converted_rows": 0,
        "missing_tokens": {},
        "missing_values": report["missing_values"],
    }
    by_check = {(f["column"], f["check"]): f for f in report["failures"]}
    assert by_check[("speed", "finite")]["rows"] == 2
    assert by_check[("speed", "finite")]["example_rows"] == [18, 402]
    assert by_check[("vibration_rms", VIBRATION_RANGE)]["example_rows"] == [17, 402]
    assert by_check[("speed", SPEED_RANGE)]["example_values"] == ["inf", "inf"]


def test_a_clean_split_keeps_every_row_in_order(raw, machine, tiny_params):
    valid, quarantined, report = validate_readings(raw, machine, tiny_params["validation"], "test")
    pdt.assert_frame_equal(valid, raw.reset_index(drop=True))
    assert quarantined.empty and list(quarantined.columns) == [*raw.columns, c.QUARANTINE_REASON]
    assert report["failures"] == [] and report["rows_quarantined"] == 0


def test_nan_burst_quarantines_exactly_the_burst(raw, machine, tiny_params):
    max_run = int(tiny_params["validation"]["max_null_run"])
    bad = raw.copy()
    col = bad.columns.get_loc("current")
    bad.iloc[100 : 101 + max_run, col] = np.nan  # max_run + 1 rows: quarantined
    bad.iloc[300 : 300 + max_run, col] = np.nan  # exactly max_run rows: allowed
    valid, quarantined, _ = validate_readings(bad, machine, tiny_params["validation"], "train")
    flat = bad.reset_index(drop=True)
    burst = list(range(100, 101 + max_run))
    pdt.assert_frame_equal(
        quarantined.drop(columns=[c.QUARANTINE_REASON]), flat.loc[burst].reset_index(drop=True)
    )
    pdt.assert_frame_equal(valid, flat.drop(index=burst).reset_index(drop=True))
    assert valid["current"].isna().sum() == raw["current"].isna().sum() + max_run


def test_machine_report_totals_and_status(machine):
    def split(name, rows_in, quarantined):
        return {"split": name, "rows_in": rows_in, "rows_valid": rows_in - quarantined,
                "rows_quarantined": quarantined, "failures": []}  # fmt: skip

    report = combine_validation_reports(
        machine, split("train", 10, 0), split("val", 5, 2), split("test", 7, 1)
    )
    assert report["rows_in"] == 22 and report["rows_valid"] == 19
    assert report["rows_quarantined"] == 3 and report["status"] == "quarantined_rows"
    assert list(report["splits"]) == ["train", "val", "test"]
    assert report["machine_id"] == machine["machine_id"]
    assert report["on_invalid"] == machine.get("on_invalid", "quarantine")
    clean = combine_validation_reports(
        machine, split("train", 10, 0), split("val", 5, 0), split("test", 7, 0)
    )
    assert clean["status"] == "clean"
