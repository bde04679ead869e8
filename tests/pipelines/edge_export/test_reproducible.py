"""Identical exports give byte-identical ONNX files and manifests (fixed graph names and, with
SOURCE_DATE_EPOCH, a fixed export time), so a changed sha256 means a changed model."""

from __future__ import annotations

import hashlib

from .helpers import export_bundle


def _hashes(folder) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def test_two_identical_exports_are_byte_identical(
    tiny_models, tiny_features, tiny_baselines, machine, tiny_params, tmp_path, monkeypatch
):
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1767225600")
    folders = [tmp_path / name for name in ("a", "b")]
    for folder in folders:
        folder.mkdir()
        export_bundle(tiny_models, tiny_features, tiny_baselines, machine, tiny_params, folder)
    first, second = (_hashes(f) for f in folders)
    assert "manifest.json" in first and any(n.endswith(".onnx") for n in first)
    assert first == second
