"""The readings checks at their exact limits, and the edge decisions against the threshold rule."""

from __future__ import annotations

import copy
from dataclasses import replace

import numpy as np
import pytest

from pdm_kedro import contract as c
from pdm_kedro.edge.bundle import load_bundle
from pdm_kedro.edge.errors import EdgeInputError
from pdm_kedro.edge.readings import check_readings, read_readings_csv
from pdm_kedro.edge.runtime import predict

from .readings_helpers import as_readings, episode_rows

MAX_GAP = 3
MANIFEST = {
    "machine_id": "toy_1",
    "sampling_interval_min": 10.0,
    "inputs": {
        "timestamp_column": "timestamp",
        "regime_column": "regime",
        "max_missing_run": MAX_GAP,
        "min_history_rows": 4,
        "min_history_hours": 0.5,
        "ignored_columns": ["note"],
    },
    "sensors": [{"name": "a"}, {"name": "b"}],
}


def _readings(n: int = 12) -> dict[str, np.ndarray]:
    start = np.datetime64("2024-01-01T00:00:00", "s")
    return {
        "timestamp": start + np.arange(n) * np.timedelta64(600, "s"),
        "regime": np.array(["idle"] * n),
        "a": np.arange(n, dtype=np.float64),
        "b": np.arange(n, dtype=np.float64) * 2.0,
    }


def test_valid_readings_come_back_typed_in_manifest_order():
    readings = _readings()
    readings["note"] = np.array(["x"] * 12)  # an ignored column is allowed
    got = check_readings({"b": readings["b"], **readings}, MANIFEST, min_rows=4)
    assert got.sensors == ("a", "b") and len(got) == 12
    np.testing.assert_array_equal(got.values[:, 0], readings["a"])
    np.testing.assert_array_equal(got.values[:, 1], readings["b"])
    assert got.values.dtype == np.float64 and got.regimes.tolist() == ["idle"] * 12
    assert got.timestamps.dtype == np.dtype("datetime64[s]")


@pytest.mark.parametrize("sensor", ["a", "b"])
def test_nan_run_of_exactly_the_limit_is_accepted(sensor):
    readings = _readings()
    readings[sensor][2 : 2 + MAX_GAP] = np.nan
    got = check_readings(readings, MANIFEST, min_rows=4)
    assert np.isnan(got.values[2 : 2 + MAX_GAP, ["a", "b"].index(sensor)]).all()


@pytest.mark.parametrize("sensor", ["a", "b"])
def test_nan_run_one_longer_than_the_limit_is_refused(sensor):
    readings = _readings()
    readings[sensor][5 : 5 + MAX_GAP + 1] = np.nan
    with pytest.raises(
        EdgeInputError,
        match=rf"Sensor '{sensor}' is missing \(NaN\) for {MAX_GAP + 1} consecutive rows "
        rf"from row 5; at most {MAX_GAP} are allowed",
    ):
        check_readings(readings, MANIFEST, min_rows=4)


def test_the_longest_run_is_the_one_reported():
    readings = _readings(20)
    readings["a"][[1, 2]] = np.nan
    readings["a"][8:13] = np.nan  # 5 rows from row 8
    readings["a"][15] = np.nan
    with pytest.raises(EdgeInputError, match="for 5 consecutive rows from row 8"):
        check_readings(readings, MANIFEST, min_rows=4)
    readings = _readings(20)
    readings["a"][14:20] = np.nan  # a run up to the last row counts too
    with pytest.raises(EdgeInputError, match="for 6 consecutive rows from row 14"):
        check_readings(readings, MANIFEST, min_rows=4)


@pytest.mark.parametrize("value", [np.inf, -np.inf])
def test_infinite_readings_of_either_sign_are_refused(value):
    readings = _readings()
    readings["b"][7] = value
    with pytest.raises(EdgeInputError, match=r"Sensor 'b' has an infinite reading at row 7 \(1 "):
        check_readings(readings, MANIFEST, min_rows=4)


def test_infinite_text_readings_are_refused():
    readings = {k: v.astype(str) for k, v in _readings().items()}
    readings["a"][3] = "-inf"
    with pytest.raises(EdgeInputError, match="'a' has an infinite reading at row 3"):
        check_readings(readings, MANIFEST, min_rows=4)


def test_missing_tokens_are_nan_and_other_text_is_refused():
    readings = {k: v.astype(object) for k, v in _readings().items()}
    readings["a"][4] = "NA"
    readings["a"][5] = None
    readings["b"][6] = " 12.5 "
    got = check_readings(readings, MANIFEST, min_rows=4)
    assert np.isnan(got.values[4, 0]) and np.isnan(got.values[5, 0])
    assert got.values[6, 1] == 12.5
    readings["b"][6] = "twelve"
    with pytest.raises(EdgeInputError, match=r"Column 'b', row 6: 'twelve' is not a number"):
        check_readings(readings, MANIFEST, min_rows=4)
    readings["b"][6] = True
    with pytest.raises(EdgeInputError, match=r"Column 'b', row 6: True is not a number"):
        check_readings(readings, MANIFEST, min_rows=4)


def test_history_length_limit_and_episode_start():
    readings = _readings(4)
    assert len(check_readings(readings, MANIFEST, min_rows=4)) == 4
    short = {k: v[1:] for k, v in readings.items()}
    with pytest.raises(EdgeInputError, match="Too little history: 3 rows given, machine toy_1"):
        check_readings(short, MANIFEST, min_rows=4)
    assert len(check_readings(short, MANIFEST, min_rows=4, from_episode_start=True)) == 3
    short["a"][0] = np.nan  # allowed only when the window starts the episode
    assert len(check_readings(short, MANIFEST, min_rows=2, from_episode_start=True)) == 3
    with pytest.raises(EdgeInputError, match=r"first row has no reading \(NaN\) for \['a'\]"):
        check_readings(short, MANIFEST, min_rows=2)


def test_timestamps_must_increase_strictly():
    readings = _readings()
    readings["timestamp"][6] = readings["timestamp"][5]
    with pytest.raises(EdgeInputError, match=r"row 6 .* does not come after row 5"):
        check_readings(readings, MANIFEST, min_rows=4)
    readings = {k: v.astype(str) for k, v in _readings().items()}
    readings["timestamp"][2] = "2024-01-01 00:20:00Z"
    assert len(check_readings(readings, MANIFEST, min_rows=4)) == 12
    readings["timestamp"][2] = "yesterday"
    with pytest.raises(EdgeInputError, match=r"'timestamp', row 2: 'yesterday' is not an ISO"):
        check_readings(readings, MANIFEST, min_rows=4)


def test_shape_and_column_errors():
    readings = _readings()
    with pytest.raises(EdgeInputError, match="must be a mapping"):
        check_readings([1, 2], MANIFEST, min_rows=4)
    with pytest.raises(
        EdgeInputError, match=r"missing columns \['b'\] and unknown columns \['c'\]"
    ):
        check_readings({**{k: v for k, v in readings.items() if k != "b"}, "c": readings["a"]},
                       MANIFEST, min_rows=4)  # fmt: skip
    with pytest.raises(EdgeInputError, match="hold no rows"):
        check_readings({k: v[:0] for k, v in readings.items()}, MANIFEST, min_rows=0)
    with pytest.raises(EdgeInputError, match=r"Columns \['a'\] must be one-dimensional"):
        check_readings({**readings, "a": readings["a"].reshape(3, 4)}, MANIFEST, min_rows=4)
    with pytest.raises(EdgeInputError, match="different lengths"):
        check_readings({**readings, "a": readings["a"][:-1]}, MANIFEST, min_rows=4)
    with pytest.raises(EdgeInputError, match="'regime' has dtype int64"):
        check_readings({**readings, "regime": np.zeros(12, dtype=np.int64)}, MANIFEST, min_rows=4)
    with pytest.raises(EdgeInputError, match="'timestamp' has dtype float64"):
        check_readings({**readings, "timestamp": np.zeros(12)}, MANIFEST, min_rows=4)
    with pytest.raises(EdgeInputError, match="'a' has dtype bool"):
        check_readings({**readings, "a": np.ones(12, dtype=bool)}, MANIFEST, min_rows=4)


def test_csv_reader(tmp_path):
    path = tmp_path / "r.csv"
    path.write_text("timestamp, a ,b\n2024-01-01T00:00:00,1,\n2024-01-01T00:10:00,2,3\n")
    got = read_readings_csv(path)
    assert list(got) == ["timestamp", "a", "b"]
    assert got["a"].tolist() == ["1", "2"] and got["b"].tolist() == ["", "3"]
    path.write_text("timestamp,a\n1,2,3\n4,5\n6\n")
    with pytest.raises(EdgeInputError, match=r"lines \[2, 4\] do not have 2 fields"):
        read_readings_csv(path)
    path.write_text("")
    with pytest.raises(EdgeInputError, match="is empty"):
        read_readings_csv(path)
    with pytest.raises(EdgeInputError, match="does not exist"):
        read_readings_csv(tmp_path / "nope.csv")
    path.write_text("timestamp,a\n")
    header_only = read_readings_csv(path)
    assert list(header_only) == ["timestamp", "a"]
    assert all(v.size == 0 for v in header_only.values())


# --- decisions and flags against the threshold rule, on the tiny exported bundle ---


@pytest.fixture(scope="module")
def bundle(tiny_bundle):
    return load_bundle(tiny_bundle[0])


@pytest.fixture(scope="module")
def episode(bundle, tiny_splits):
    raw = tiny_splits[2]
    longest = raw[c.EPISODE].value_counts().idxmax()
    sensors = [s["name"] for s in bundle.manifest["sensors"]]
    return as_readings(episode_rows(raw, longest), sensors)


def _with_thresholds(bundle, failure: float, anomaly: float):
    manifest = copy.deepcopy(bundle.manifest)
    manifest["models"]["classification"]["threshold"] = failure
    manifest["models"]["anomaly"]["threshold"] = anomaly
    return replace(bundle, manifest=manifest)


def test_decisions_and_flags_follow_score_at_or_above_threshold(bundle, episode):
    answer = predict(bundle, episode, all_rows=True, from_episode_start=True)
    proba = np.array(answer["failure"]["probability"])
    score = np.array(answer["anomaly"]["score"])
    # thresholds set between the answers so that both outcomes occur, one exactly at a value
    failure_t = float(np.sort(proba)[len(proba) // 2])
    anomaly_t = float(np.sort(score)[len(score) // 2])
    moved = predict(
        _with_thresholds(bundle, failure_t, anomaly_t),
        episode,
        all_rows=True,
        from_episode_start=True,
    )
    decision = np.array(moved["failure"]["decision"])
    flag = np.array(moved["anomaly"]["flag"])
    np.testing.assert_array_equal(decision, proba >= failure_t)
    np.testing.assert_array_equal(flag, score >= anomaly_t)
    assert decision.any() and not decision.all() and flag.any() and not flag.all()
    assert moved["failure"]["threshold"] == failure_t
    assert moved["anomaly"]["threshold"] == anomaly_t
    np.testing.assert_array_equal(moved["failure"]["probability"], proba)
    # the last-row answer is the last row of the every-row answer
    last = predict(_with_thresholds(bundle, failure_t, anomaly_t), episode)
    assert last["failure"]["decision"] == bool(decision[-1])
    assert last["anomaly"]["flag"] == bool(flag[-1])
    assert last["failure"]["probability"] == pytest.approx(proba[-1])
    assert last["timestamp"] == str(episode[c.TIMESTAMP][-1].astype("datetime64[s]"))


def test_decision_at_exactly_the_threshold_is_an_alarm(bundle, episode):
    answer = predict(bundle, episode)
    at = _with_thresholds(bundle, answer["failure"]["probability"], answer["anomaly"]["score"])
    exact = predict(at, episode)
    assert exact["failure"]["decision"] is True and exact["anomaly"]["flag"] is True
    above = _with_thresholds(
        bundle,
        np.nextafter(answer["failure"]["probability"], 2.0),
        np.nextafter(answer["anomaly"]["score"], np.inf),
    )
    none = predict(above, episode)
    assert none["failure"]["decision"] is False and none["anomaly"]["flag"] is False
