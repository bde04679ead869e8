"""Atomic bundles: a new export is staged, checked, then swapped in whole; a failed or broken
export never touches the last good bundle the runtime loads."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from kedro.framework.hooks.manager import _create_hook_manager
from kedro.io import DataCatalog, DatasetError
from kedro.runner import SequentialRunner

import pdm_kedro.pipelines.edge_export.nodes as export_nodes
from pdm_kedro.datasets.edge_bundle import (
    EdgeBundleDataset,
    promote_staged_bundle,
    staging_dir,
)
from pdm_kedro.datasets.onnx_dataset import OnnxModelDataset
from pdm_kedro.edge.bundle import MANIFEST_FILE, load_bundle
from pdm_kedro.edge.errors import BundleError, UnknownMachineError
from pdm_kedro.edge.manifest import seal_manifest
from pdm_kedro.hooks import RunGuardHook
from pdm_kedro.pipeline_registry import namespace_for_machine
from pdm_kedro.pipelines.edge_export.nodes import EdgeParityError
from pdm_kedro.pipelines.edge_export.pipeline import build_edge_export_pipeline
from tests.pipelines.edge_export.helpers import EXPORTED_FAMILIES, export_datasets


def _copy(tiny_bundle, folder, created_at=None):
    shutil.copytree(tiny_bundle[0], folder)
    if created_at is not None:
        manifest = json.loads((folder / MANIFEST_FILE).read_text())
        manifest["created_at"] = created_at
        (folder / MANIFEST_FILE).write_text(json.dumps(seal_manifest(manifest)))
    return folder


def _created_at(folder):
    return json.loads((folder / MANIFEST_FILE).read_text())["created_at"]


def test_a_staged_bundle_replaces_the_live_one_whole(tiny_bundle, machine, tmp_path):
    live = _copy(tiny_bundle, tmp_path / "edge", created_at="old")
    _copy(tiny_bundle, staging_dir(live), created_at="new")
    promote_staged_bundle(live, machine_id=machine["machine_id"])
    assert _created_at(live) == "new" and not staging_dir(live).exists()
    assert load_bundle(live, machine_id=machine["machine_id"]).families
    assert sorted(p.name for p in tmp_path.iterdir()) == ["edge"]  # no old folder left behind


def test_the_first_bundle_is_renamed_into_place(tiny_bundle, machine, tmp_path):
    live = tmp_path / "edge"
    _copy(tiny_bundle, staging_dir(live), created_at="first")
    promote_staged_bundle(live, machine_id=machine["machine_id"])
    assert _created_at(live) == "first" and not staging_dir(live).exists()


@pytest.mark.parametrize("damage", ["truncated_onnx", "missing_manifest", "other_machine"])
def test_a_broken_staged_bundle_leaves_the_live_one_untouched(
    damage, tiny_bundle, machine, tmp_path
):
    live = _copy(tiny_bundle, tmp_path / "edge", created_at="old")
    staged = _copy(tiny_bundle, staging_dir(live), created_at="new")
    if damage == "truncated_onnx":
        onnx = next(staged.glob("*.onnx"))
        onnx.write_bytes(onnx.read_bytes()[:100])
    elif damage == "missing_manifest":
        (staged / MANIFEST_FILE).unlink()
    with pytest.raises((BundleError, UnknownMachineError)):
        promote_staged_bundle(
            live, machine_id="pump_grundfos_cr3_004" if damage == "other_machine" else None
        )
    assert _created_at(live) == "old"
    assert load_bundle(live, machine_id=machine["machine_id"]).families


def _export(tiny_models, tiny_features, tiny_baselines, machine, tiny_params, live):
    """The edge_export pipeline run as a Kedro session runs it: the run guard hook around it,
    files written to the staging folder (the project's catalog), the live bundle in the catalog."""
    m = machine["machine_id"]
    pipeline = namespace_for_machine(build_edge_export_pipeline(EXPORTED_FAMILIES), m)
    staged = staging_dir(live)
    # every bundle file goes to the staging folder, explanation.json included
    datasets = {
        **export_datasets(
            tiny_models, tiny_features, tiny_baselines, machine, tiny_params, staged, "7"
        ),
        f"{m}.edge_bundle": EdgeBundleDataset(path=str(live)),
    }
    catalog = DataCatalog(datasets)
    hook = RunGuardHook()
    manager = _create_hook_manager()
    manager.register(hook)
    hook.before_pipeline_run(run_params={}, pipeline=pipeline, catalog=catalog)
    try:
        SequentialRunner().run(pipeline, catalog, manager)
    except Exception as error:
        hook.on_pipeline_error(error=error)
        raise
    hook.after_pipeline_run()


@pytest.fixture()
def live_bundle(tiny_bundle, tmp_path, monkeypatch):
    monkeypatch.setenv("PDM_DATA_ROOT", str(tmp_path / "data"))  # where the run locks go
    return _copy(tiny_bundle, tmp_path / "06_models" / "m" / "edge", created_at="last good")


def test_a_failed_export_keeps_the_last_good_bundle_loadable(
    live_bundle, tiny_models, tiny_features, tiny_baselines, machine, tiny_params, monkeypatch
):
    real = export_nodes.run_onnx

    def off_by_one(model, x, output):  # every ONNX answer off: the parity check fails
        return np.asarray(real(model, x, output), dtype=np.float64) + 1.0

    monkeypatch.setattr(export_nodes, "run_onnx", off_by_one)
    before = {p.name: p.read_bytes() for p in live_bundle.iterdir()}
    with pytest.raises(EdgeParityError):
        _export(tiny_models, tiny_features, tiny_baselines, machine, tiny_params, live_bundle)
    assert {p.name: p.read_bytes() for p in live_bundle.iterdir()} == before
    bundle = load_bundle(live_bundle, machine_id=machine["machine_id"])
    assert bundle.manifest["created_at"] == "last good"


def test_a_passing_export_swaps_the_new_bundle_in(
    live_bundle, tiny_models, tiny_features, tiny_baselines, machine, tiny_params
):
    stale = staging_dir(live_bundle)
    stale.mkdir()
    (stale / "left_by_a_killed_export.onnx").write_bytes(b"partial")
    _export(tiny_models, tiny_features, tiny_baselines, machine, tiny_params, live_bundle)
    bundle = load_bundle(live_bundle, machine_id=machine["machine_id"])
    assert bundle.manifest["created_at"] != "last good"
    assert {e["registry_version"] for e in bundle.manifest["models"].values()} == {"7"}
    assert not stale.exists()
    assert "left_by_a_killed_export.onnx" not in {p.name for p in live_bundle.iterdir()}


def test_an_onnx_file_is_written_whole_or_not_at_all(tiny_bundle, tmp_path, monkeypatch):
    import onnx  # noqa: PLC0415

    source = next(tiny_bundle[0].glob("*.onnx"))
    model = onnx.load_model_from_string(source.read_bytes())
    target = tmp_path / "model.onnx"
    OnnxModelDataset(str(target)).save(model)
    good = target.read_bytes()
    assert good == source.read_bytes() and sorted(p.name for p in tmp_path.iterdir()) == [
        "model.onnx"
    ]

    def failed(src, dst):  # the write fails between the temporary file and the rename
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("pdm_kedro.datasets.atomic.os.replace", failed)
    with pytest.raises(DatasetError, match="No space left"):
        OnnxModelDataset(str(target)).save(model)
    assert target.read_bytes() == good
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.onnx"]
