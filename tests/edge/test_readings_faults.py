"""Hostile readings: implausible times and units, another sampling interval, readings far off
the training reference, latin-1 or random bytes, and long files read in bounded memory."""

from __future__ import annotations

import numpy as np
import pytest

from pdm_kedro import contract as c
from pdm_kedro.edge.__main__ import main
from pdm_kedro.edge.bundle import load_bundle
from pdm_kedro.edge.errors import EdgeInputError
from pdm_kedro.edge.readings import check_readings, read_readings_csv
from pdm_kedro.edge.runtime import predict

from .readings_helpers import as_readings, episode_rows, write_readings_csv


@pytest.fixture(scope="module")
def bundle(tiny_bundle):
    return load_bundle(tiny_bundle[0])


@pytest.fixture()
def window(bundle, tiny_splits):
    raw = tiny_splits[2]
    rows = episode_rows(raw, raw[c.EPISODE].value_counts().idxmax())
    sensors = [s["name"] for s in bundle.manifest["sensors"]]
    part = rows.iloc[-bundle.manifest["inputs"]["min_history_rows"] :].copy()
    part[sensors] = part[sensors].ffill().bfill()
    return part, sensors


def _check(bundle, readings):
    return check_readings(readings, bundle.manifest, bundle.manifest["inputs"]["min_history_rows"])


def test_epoch_seconds_are_refused_with_the_unit(bundle, window):
    rows, sensors = window
    readings = as_readings(rows, sensors)
    readings[c.TIMESTAMP] = np.array([str(1700358200 + 600 * i) for i in range(len(rows))])
    with pytest.raises(EdgeInputError, match="epoch seconds"):
        _check(bundle, readings)


def test_implausible_year_is_refused(bundle, window):
    rows, sensors = window
    readings = as_readings(rows, sensors)
    readings[c.TIMESTAMP] = readings[c.TIMESTAMP] - np.timedelta64(80 * 365, "D")
    with pytest.raises(EdgeInputError, match="not a plausible reading time"):
        _check(bundle, readings)


def test_other_sampling_interval_is_refused(bundle, window):
    rows, sensors = window
    readings = as_readings(rows, sensors)
    start = readings[c.TIMESTAMP][0]
    readings[c.TIMESTAMP] = start + np.arange(len(rows)) * np.timedelta64(1, "m")
    with pytest.raises(EdgeInputError, match=r"come every 1 min.*resample"):
        _check(bundle, readings)


@pytest.mark.parametrize("factor", [1e6, -1e6, 1e-100])
def test_physically_implausible_reading_is_refused(bundle, window, factor):
    rows, sensors = window
    readings = as_readings(rows, sensors)
    readings[sensors[0]][-1] = factor
    with pytest.raises(EdgeInputError, match=rf"Sensor '{sensors[0]}'.*(physical|corrupted)"):
        _check(bundle, readings)


def test_reading_outside_the_configured_range_is_refused(bundle, window):
    """A corrupted page (1e-100, i.e. 0 instead of 58 degC) is inside 1000 scales but outside
    the sensor's configured range."""
    rows, sensors = window
    sensor = bundle.manifest["sensors"][0]
    readings = as_readings(rows, sensors)
    readings[sensors[0]][-1] = sensor["min"] - 1.0
    with pytest.raises(EdgeInputError, match=r"outside the sensor's physical range"):
        _check(bundle, readings)


def test_valid_window_still_answers(bundle, window):
    rows, sensors = window
    assert predict(bundle, as_readings(rows, sensors))["machine_id"] == bundle.machine_id


@pytest.mark.parametrize(
    "payload", [b"timestamp,regime\n2026-01-01T00:00:00,caf\xe9\n", bytes(range(256)) * 4]
)
def test_latin1_or_random_bytes_are_one_clear_error(tmp_path, payload):
    path = tmp_path / "bad.csv"
    path.write_bytes(payload)
    with pytest.raises(EdgeInputError, match="not UTF-8 text|not a readable CSV|fields"):
        read_readings_csv(path)


def test_bom_is_accepted(tmp_path):
    path = tmp_path / "bom.csv"
    path.write_bytes(b"\xef\xbb\xbftimestamp,regime\n2026-01-01T00:00:00,idle\n")
    assert list(read_readings_csv(path)) == ["timestamp", "regime"]


def test_long_file_keeps_only_the_needed_history(bundle, window, tmp_path, capsys):
    rows, sensors = window
    path = write_readings_csv(rows, sensors, tmp_path / "r.csv")
    assert len(read_readings_csv(path, keep_last=7)[c.TIMESTAMP]) == 7
    last = read_readings_csv(path, keep_last=7)[c.TIMESTAMP][-1]
    assert last == read_readings_csv(path)[c.TIMESTAMP][-1]
    assert main(["predict", "--bundle", str(bundle.path), "--readings", str(path)]) == 0
    capsys.readouterr()
