"""The edge_export template on one machine namespace, with an in-memory catalog."""

from __future__ import annotations

from kedro.io import DataCatalog
from kedro.runner import SequentialRunner

from pdm_kedro.edge.bundle import load_bundle
from pdm_kedro.pipeline_registry import namespace_for_machine
from pdm_kedro.pipelines.edge_export.pipeline import build_edge_export_pipeline

from .helpers import EXPORTED_FAMILIES, export_datasets


def test_pipeline_writes_a_loadable_bundle(
    tiny_models, tiny_features, tiny_baselines, machine, tiny_params, tmp_path
):
    m = machine["machine_id"]
    pipeline = namespace_for_machine(build_edge_export_pipeline(EXPORTED_FAMILIES), m)
    folder = tmp_path / "06_models" / m / "edge"
    datasets = export_datasets(
        tiny_models, tiny_features, tiny_baselines, machine, tiny_params, folder, "3"
    )
    assert pipeline.inputs() == {k for k in datasets if k.endswith(".production_model")} | {
        f"params:{m}.machine",
        "params:edge_export",
        "params:validation",
        "params:diagnosis",
        f"{m}.sensor_baselines",
        f"{m}.features_test",
        f"{m}.features_train",
        f"{m}.diagnosis.reference",
    }
    SequentialRunner().run(pipeline, DataCatalog(datasets))
    bundle = load_bundle(tmp_path / "06_models", machine_id=m)
    assert bundle.families == list(EXPORTED_FAMILIES)
    for family in EXPORTED_FAMILIES:  # built from the production (champion) version
        entry = bundle.manifest["models"][family]
        assert entry["registered_model"] == f"{m}-{family}" and entry["registry_version"] == "3"
    assert sorted(p.name for p in folder.iterdir()) == [
        "anomaly.onnx",
        "classification.onnx",
        "explanation.json",
        "manifest.json",
        "regression.onnx",
    ]
    # explanation.json: listed with its sha256 (sealed), read back by the runtime's explainer
    assert bundle.manifest["explanation"]["file"] == "explanation.json"
    assert bundle.explainer is not None
    assert bundle.explainer.explains("classification") and bundle.explainer.explains("anomaly")
    assert bundle.explainer.diagnosis_spec["modes"]
