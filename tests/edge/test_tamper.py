"""Tamper-evident bundles: the manifest's own digest (and optional HMAC) is checked on every load,
by the runtime, the CLI ``info`` and ``predict``; every change gives one line and exit code 2."""

from __future__ import annotations

import json
import shutil

import pytest

from pdm_kedro.edge.__main__ import main
from pdm_kedro.edge.bundle import MANIFEST_FILE, load_bundle
from pdm_kedro.edge.errors import BundleError, UnknownMachineError
from pdm_kedro.edge.manifest import manifest_digest, seal_manifest


@pytest.fixture()
def bundle_copy(tiny_bundle, tmp_path):
    folder = tmp_path / tiny_bundle[1]["machine_id"] / "edge"
    shutil.copytree(tiny_bundle[0], folder)
    return folder, json.loads((folder / MANIFEST_FILE).read_text())


def one_line(capsys, *argv) -> str:
    code = main(list(argv))
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert len(err.splitlines()) == 1 and err.startswith("error: ") and "Traceback" not in err
    return err


def test_exported_manifest_is_sealed(tiny_bundle):
    manifest = tiny_bundle[1]
    assert manifest["integrity"] == {"algorithm": "sha256", "digest": manifest_digest(manifest)}
    assert load_bundle(tiny_bundle[0]).manifest["integrity"]["digest"]


@pytest.mark.parametrize(
    "edit",
    [
        lambda m: m["models"]["classification"].__setitem__("threshold", 0.0),
        lambda m: m["sensors"][0].__setitem__("scale", m["sensors"][0]["scale"] * 1.8),
        lambda m: m.__setitem__("machine_id", "pump_grundfos_cr3_004"),
        lambda m: m.pop("integrity"),
    ],
    ids=["threshold_zero", "sensor_scale", "other_machine_id", "digest_removed"],
)
def test_edited_manifest_is_refused_by_info_and_predict(bundle_copy, capsys, edit):
    folder, manifest = bundle_copy
    edit(manifest)
    (folder / MANIFEST_FILE).write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match="changed after export|no integrity digest"):
        load_bundle(folder)
    err = one_line(capsys, "info", "--bundle", str(folder))
    assert "re-export" in err.lower()
    err = one_line(capsys, "predict", "--bundle", str(folder), "--readings", str(folder / "x.csv"))
    assert "manifest" in err


def test_manifest_of_another_machine_is_refused(bundle_copy, capsys):
    folder, manifest = bundle_copy
    with pytest.raises(UnknownMachineError, match="serves machine"):
        load_bundle(folder, machine_id="pump_grundfos_cr3_004")
    assert "serves machine" in one_line(
        capsys, "info", "--bundle", str(folder), "--machine", "pump_grundfos_cr3_004"
    )


@pytest.mark.parametrize("damage", ["flip", "empty", "missing"])
def test_info_checks_every_model_file(bundle_copy, capsys, damage):
    folder, manifest = bundle_copy
    path = folder / manifest["models"]["anomaly"]["file"]
    if damage == "flip":
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 0xFF
        path.write_bytes(bytes(data))
    elif damage == "empty":
        path.write_bytes(b"")
    else:
        path.unlink()
    assert "anomaly" in one_line(capsys, "info", "--bundle", str(folder))


def test_swapped_onnx_files_are_refused(bundle_copy, capsys):
    folder, manifest = bundle_copy
    a = folder / manifest["models"]["classification"]["file"]
    b = folder / manifest["models"]["regression"]["file"]
    data_a, data_b = a.read_bytes(), b.read_bytes()
    a.write_bytes(data_b)
    b.write_bytes(data_a)
    assert "sha256" in one_line(capsys, "info", "--bundle", str(folder))


def test_hmac_with_a_plant_key(bundle_copy, monkeypatch, capsys):
    folder, manifest = bundle_copy
    (folder / MANIFEST_FILE).write_text(json.dumps(seal_manifest(manifest, key=b"plant-secret")))
    assert load_bundle(folder, hmac_key=b"plant-secret").machine_id == manifest["machine_id"]
    with pytest.raises(BundleError, match="HMAC does not match"):
        load_bundle(folder, hmac_key=b"other")
    monkeypatch.setenv("PDM_EDGE_HMAC_KEY", "other")
    assert "HMAC does not match" in one_line(capsys, "info", "--bundle", str(folder))
    (folder / MANIFEST_FILE).write_text(json.dumps(seal_manifest(manifest)))
    with pytest.raises(BundleError, match="no HMAC but a key was given"):
        load_bundle(folder)
