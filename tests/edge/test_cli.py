"""The technician's command line: JSON answers, clear errors with exit code 2."""

from __future__ import annotations

import json

import pytest

from pdm_kedro import contract as c
from pdm_kedro.edge.__main__ import main
from pdm_kedro.edge.bundle import load_bundle
from pdm_kedro.edge.readings import read_readings_csv
from pdm_kedro.edge.runtime import predict

from .readings_helpers import as_readings, episode_rows, write_readings_csv


@pytest.fixture()
def episode(tiny_splits, tiny_bundle):
    raw = tiny_splits[2]
    return episode_rows(raw, raw[c.EPISODE].value_counts().idxmax())


def test_predict_every_row_from_episode_start(tiny_bundle, episode, tmp_path, capsys):
    folder, manifest = tiny_bundle
    sensors = [s["name"] for s in manifest["sensors"]]
    path = write_readings_csv(episode, sensors, tmp_path / "episode.csv")
    root = folder.parent.parent
    code = main(
        ["predict", "--bundle", str(root), "--machine", manifest["machine_id"],
         "--readings", str(path), "--all-rows", "--from-episode-start"]
    )  # fmt: skip
    assert code == 0
    answer = json.loads(capsys.readouterr().out)
    assert len(answer["failure"]["probability"]) == len(episode)
    direct = predict(
        load_bundle(folder), as_readings(episode, sensors), all_rows=True, from_episode_start=True
    )
    assert answer["failure"] == direct["failure"]  # CSV round trip changes nothing
    assert answer["anomaly"]["score"] == pytest.approx(direct["anomaly"]["score"], abs=1e-12)


def test_csv_reader_keeps_missing_readings_as_empty_fields(tiny_bundle, episode, tmp_path):
    sensors = [s["name"] for s in tiny_bundle[1]["sensors"]]
    path = write_readings_csv(episode, sensors, tmp_path / "episode.csv")
    columns = read_readings_csv(path)
    assert list(columns) == [c.TIMESTAMP, c.REGIME, *sensors]
    assert len(columns[c.REGIME]) == len(episode)


def test_bad_input_exits_2_with_message(tiny_bundle, episode, tmp_path, capsys):
    folder, manifest = tiny_bundle
    sensors = [s["name"] for s in manifest["sensors"]]
    path = write_readings_csv(episode.iloc[:20], sensors, tmp_path / "short.csv")
    assert main(["predict", "--bundle", str(folder), "--readings", str(path)]) == 2
    assert "Too little history: 20 rows" in capsys.readouterr().err
    assert main(["predict", "--bundle", str(folder), "--readings", str(tmp_path / "no.csv")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["info", "--bundle", str(folder.parent.parent), "--machine", "nope_1"]) == 2
    assert "Unknown machine 'nope_1'" in capsys.readouterr().err


def test_info_lists_the_expected_columns(tiny_bundle, capsys):
    folder, manifest = tiny_bundle
    assert main(["info", "--bundle", str(folder)]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["columns"][:2] == [c.TIMESTAMP, c.REGIME]
    assert len(info["columns"]) == 2 + len(manifest["sensors"])
    assert set(info["models"]) == {"classification", "regression", "anomaly"}
