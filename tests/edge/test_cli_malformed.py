"""The edge CLI answers malformed bundles and readings files with one line and exit code 2."""

from __future__ import annotations

import hashlib
import json
import shutil

import pytest

from pdm_kedro import contract as c
from pdm_kedro.edge.__main__ import main
from pdm_kedro.edge.bundle import MANIFEST_FILE
from pdm_kedro.edge.manifest import seal_manifest

from .readings_helpers import episode_rows, write_readings_csv


@pytest.fixture()
def bundle_copy(tiny_bundle, tmp_path):
    folder = tmp_path / "edge"
    shutil.copytree(tiny_bundle[0], folder)
    return folder, json.loads((folder / MANIFEST_FILE).read_text())


@pytest.fixture()
def readings_csv(tiny_bundle, tiny_splits, tmp_path):
    raw = tiny_splits[2]
    rows = episode_rows(raw, raw[c.EPISODE].value_counts().idxmax())
    sensors = [s["name"] for s in tiny_bundle[1]["sensors"]]
    return write_readings_csv(rows, sensors, tmp_path / "episode.csv")


def run(capsys, *argv) -> tuple[int, str]:
    code = main(list(argv))
    err = capsys.readouterr().err.strip()
    return code, err


def one_line_error(code: int, err: str) -> str:
    assert code == 2
    assert len(err.splitlines()) == 1 and err.startswith("error: "), err
    assert "Traceback" not in err
    return err


@pytest.mark.parametrize(
    ("manifest", "expected"),
    [
        ([1, 2], "manifest field (root): expected an object"),
        ({"format_version": 1}, "manifest field machine_id is missing"),
        ("text", "manifest field (root): expected an object"),
    ],
)
def test_malformed_manifest(bundle_copy, capsys, manifest, expected):
    folder, _ = bundle_copy
    (folder / MANIFEST_FILE).write_text(json.dumps(manifest))
    err = one_line_error(*run(capsys, "info", "--bundle", str(folder)))
    assert expected in err


def test_manifest_missing_nested_keys(bundle_copy, capsys):
    folder, manifest = bundle_copy
    del manifest["inputs"]["regime_column"]
    (folder / MANIFEST_FILE).write_text(json.dumps(manifest))
    assert "manifest field inputs.regime_column" in one_line_error(
        *run(capsys, "info", "--bundle", str(folder))
    )
    manifest["inputs"]["regime_column"] = "regime"
    manifest["models"]["classification"] = ["not", "an", "entry"]
    (folder / MANIFEST_FILE).write_text(json.dumps(manifest))
    assert "manifest field models.classification" in one_line_error(
        *run(capsys, "info", "--bundle", str(folder))
    )


def test_manifest_not_utf8(bundle_copy, capsys):
    folder, _ = bundle_copy
    (folder / MANIFEST_FILE).write_bytes(b"\xff\xfe{}")
    assert "is not valid JSON" in one_line_error(*run(capsys, "info", "--bundle", str(folder)))


def test_garbage_onnx_with_a_matching_hash(bundle_copy, readings_csv, capsys):
    """A file whose sha256 was updated too (a hand edit) is still refused by onnxruntime: one line."""
    folder, manifest = bundle_copy
    garbage = b"this is not an onnx model"
    entry = manifest["models"]["classification"]
    (folder / entry["file"]).write_bytes(garbage)
    entry["sha256"] = hashlib.sha256(garbage).hexdigest()
    (folder / MANIFEST_FILE).write_text(json.dumps(manifest))
    assert "changed after export" in one_line_error(*run(capsys, "info", "--bundle", str(folder)))
    (folder / MANIFEST_FILE).write_text(json.dumps(seal_manifest(manifest)))  # resealed as well
    err = one_line_error(
        *run(
            capsys,
            "predict",
            "--bundle",
            str(folder),
            "--readings",
            str(readings_csv),
            "--from-episode-start",
        )
    )
    assert "classification file" in err and "not a model onnxruntime can load" in err


def test_readings_not_utf8(bundle_copy, tmp_path, capsys):
    folder, _ = bundle_copy
    path = tmp_path / "latin1.csv"
    path.write_bytes("timestamp,regime\n2025-01-01T00:00:00,büro\n".encode("latin-1"))
    err = one_line_error(*run(capsys, "predict", "--bundle", str(folder), "--readings", str(path)))
    assert "is not UTF-8 text" in err and "latin1.csv" in err


def test_readings_with_a_byte_order_mark_are_read(bundle_copy, readings_csv, tmp_path, capsys):
    folder, _ = bundle_copy
    with_bom = tmp_path / "excel.csv"
    with_bom.write_bytes(b"\xef\xbb\xbf" + readings_csv.read_bytes())
    argv = ("predict", "--bundle", str(folder), "--all-rows", "--from-episode-start")
    assert main([*argv, "--readings", str(with_bom)]) == 0
    with_bom_answer = json.loads(capsys.readouterr().out)
    assert main([*argv, "--readings", str(readings_csv)]) == 0
    assert json.loads(capsys.readouterr().out) == with_bom_answer


def test_readings_folder_instead_of_file(bundle_copy, tmp_path, capsys):
    folder, _ = bundle_copy
    assert "does not exist" in one_line_error(
        *run(capsys, "predict", "--bundle", str(folder), "--readings", str(tmp_path))
    )
