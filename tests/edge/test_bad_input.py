"""Bad input gets a clear error naming what is wrong."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from pdm_kedro import contract as c
from pdm_kedro.edge.bundle import load_bundle, resolve_bundle_dir
from pdm_kedro.edge.errors import BundleError, EdgeInputError, UnknownMachineError
from pdm_kedro.edge.manifest import seal_manifest
from pdm_kedro.edge.runtime import predict

from .readings_helpers import as_readings, episode_rows


@pytest.fixture(scope="module")
def bundle(tiny_bundle):
    return load_bundle(tiny_bundle[0])


@pytest.fixture()
def readings(bundle, tiny_splits):
    """A valid window: the last ``min_history_rows`` readings of the longest test episode."""
    raw = tiny_splits[2]
    longest = raw[c.EPISODE].value_counts().idxmax()
    rows = episode_rows(raw, longest)
    need = bundle.manifest["inputs"]["min_history_rows"]
    sensors = [s["name"] for s in bundle.manifest["sensors"]]
    window = rows.iloc[-need:].copy()
    window[sensors] = window[sensors].ffill().bfill()  # complete first row
    return as_readings(window, sensors)


def _sensor(bundle, i=0):
    return bundle.manifest["sensors"][i]["name"]


def test_valid_readings_are_answered(bundle, readings):
    answer = predict(bundle, readings)
    assert 0.0 <= answer["failure"]["probability"] <= 1.0
    assert isinstance(answer["anomaly"]["flag"], bool)
    assert answer["warnings"] == []


def test_wrong_sensor_name(bundle, readings):
    name = _sensor(bundle)
    readings["winding_temp_typo"] = readings.pop(name)
    with pytest.raises(EdgeInputError, match=rf"missing columns \['{name}'\].*unknown columns"):
        predict(bundle, readings)


def test_wrong_sensor_count(bundle, readings):
    readings.pop(_sensor(bundle, 1))
    with pytest.raises(EdgeInputError, match="missing columns"):
        predict(bundle, readings)


def test_not_a_mapping(bundle, readings):
    with pytest.raises(EdgeInputError, match="mapping"):
        predict(bundle, np.zeros((200, 6)))


def test_ragged_columns(bundle, readings):
    name = _sensor(bundle)
    readings[name] = readings[name][:-1]
    with pytest.raises(EdgeInputError, match="different lengths"):
        predict(bundle, readings)


def test_infinite_reading(bundle, readings):
    name = _sensor(bundle)
    readings[name][10] = np.inf
    with pytest.raises(EdgeInputError, match=rf"{name}.*infinite reading at row 10"):
        predict(bundle, readings)


def test_long_run_of_missing_readings(bundle, readings):
    name = _sensor(bundle)
    readings[name][20:40] = np.nan
    with pytest.raises(EdgeInputError, match=rf"{name}.*20 consecutive rows from row 20"):
        predict(bundle, readings)


def test_short_gap_is_forward_filled_like_training(bundle, readings):
    readings[_sensor(bundle)][20:22] = np.nan
    assert predict(bundle, readings)["rows"] == len(readings[c.REGIME])


def test_missing_first_reading(bundle, readings):
    readings[_sensor(bundle)][0] = np.nan
    with pytest.raises(EdgeInputError, match="first row has no reading"):
        predict(bundle, readings)


def test_too_little_history(bundle, readings):
    short = {k: v[-50:] for k, v in readings.items()}
    need = bundle.manifest["inputs"]["min_history_rows"]
    with pytest.raises(EdgeInputError, match=rf"Too little history: 50 rows given.*{need}"):
        predict(bundle, short)
    assert predict(bundle, short, from_episode_start=True)["rows"] == 50


def test_wrong_dtype(bundle, readings):
    name = _sensor(bundle)
    text = readings[name].astype(str)
    text[5] = "hot"
    readings[name] = text
    with pytest.raises(EdgeInputError, match=rf"{name}.*row 5: 'hot' is not a number"):
        predict(bundle, readings)
    readings[name] = np.ones(len(text), dtype=bool)
    with pytest.raises(EdgeInputError, match="dtype bool"):
        predict(bundle, readings)


def test_numeric_strings_are_accepted(bundle, readings):
    expected = predict(bundle, readings)
    as_text = {k: (v.astype(str) if k != c.TIMESTAMP else v) for k, v in readings.items()}
    assert predict(bundle, as_text)["failure"] == expected["failure"]


def test_unordered_timestamps(bundle, readings):
    stamps = readings[c.TIMESTAMP].copy()
    stamps[[30, 31]] = stamps[[31, 30]]
    readings[c.TIMESTAMP] = stamps
    with pytest.raises(EdgeInputError, match="increase strictly.*row 31"):
        predict(bundle, readings)


def test_unknown_regime_is_coded_like_training(bundle, readings):
    readings[c.REGIME] = readings[c.REGIME].astype(object)
    readings[c.REGIME][-1] = "overdrive"
    assert "overdrive" in predict(bundle, readings)["warnings"][0]


def test_unknown_machine(tiny_bundle):
    root = tiny_bundle[0].parent.parent
    with pytest.raises(UnknownMachineError, match=r"Unknown machine 'pump_x_999'.*motor_siemens"):
        resolve_bundle_dir(root, "pump_x_999")
    with pytest.raises(UnknownMachineError, match="serves machine"):
        load_bundle(tiny_bundle[0], machine_id="pump_x_999")
    assert load_bundle(root, machine_id=tiny_bundle[1]["machine_id"]).machine_id


def test_not_a_bundle(tmp_path):
    with pytest.raises(BundleError, match="not an edge bundle"):
        load_bundle(tmp_path)


def test_tampered_model_file(tiny_bundle, tmp_path):
    copy = tmp_path / "edge"
    shutil.copytree(tiny_bundle[0], copy)
    with (copy / "anomaly.onnx").open("ab") as handle:
        handle.write(b"\0")
    with pytest.raises(BundleError, match="anomaly file anomaly.onnx .*sha256"):
        load_bundle(copy)


def test_unsupported_manifest_version(tiny_bundle, tmp_path):
    copy = tmp_path / "edge"
    shutil.copytree(tiny_bundle[0], copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["format_version"] = 99
    (copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match="format_version 99"):
        load_bundle(copy)


def test_failed_export_parity_is_reported_in_every_answer(tiny_bundle, readings, tmp_path):
    copy = tmp_path / "edge"
    shutil.copytree(tiny_bundle[0], copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["models"]["regression"]["parity"] |= {"passed": False, "failure": "worst row 7"}
    (copy / "manifest.json").write_text(json.dumps(seal_manifest(manifest)))
    warnings = predict(load_bundle(copy), readings)["warnings"]
    assert any("regression" in w and "worst row 7" in w for w in warnings)


def test_a_model_trained_with_other_sensor_baselines_is_reported_in_every_answer(
    tiny_bundle, readings, tmp_path
):
    copy = tmp_path / "edge"
    shutil.copytree(tiny_bundle[0], copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["models"]["anomaly"]["feature_constants_match"] = False
    (copy / "manifest.json").write_text(json.dumps(seal_manifest(manifest)))
    warnings = predict(load_bundle(copy), readings)["warnings"]
    assert any(w.startswith("anomaly:") and "other sensor baselines" in w for w in warnings)
    assert not any(
        "other sensor baselines" in w
        for w in predict(load_bundle(tiny_bundle[0]), readings)["warnings"]
    )
