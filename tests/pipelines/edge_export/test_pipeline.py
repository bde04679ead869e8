"""The edge_export template on one machine namespace, with an in-memory catalog."""

from __future__ import annotations

from kedro.io import DataCatalog, MemoryDataset
from kedro.runner import SequentialRunner
from kedro_datasets.json import JSONDataset
from kedro_datasets.text import TextDataset

from pdm_kedro.datasets.onnx_dataset import OnnxModelDataset
from pdm_kedro.edge.bundle import load_bundle
from pdm_kedro.evaluation import explain as ex
from pdm_kedro.pipeline_registry import namespace_for_machine
from pdm_kedro.pipelines.edge_export.pipeline import build_edge_export_pipeline

from .helpers import EXPORTED_FAMILIES, _metrics


def test_pipeline_writes_a_loadable_bundle(
    tiny_models, tiny_features, tiny_baselines, machine, tiny_params, tmp_path
):
    m = machine["machine_id"]
    pipeline = namespace_for_machine(build_edge_export_pipeline(EXPORTED_FAMILIES), m)
    folder = tmp_path / "06_models" / m / "edge"
    reference = ex.fit_deviation_reference(
        tiny_features["train"], machine, tiny_baselines, tiny_params["diagnosis"]
    )
    datasets = {
        f"params:{m}.machine": MemoryDataset(machine),
        "params:edge_export": MemoryDataset(tiny_params["edge_export"]),
        "params:validation": MemoryDataset(tiny_params["validation"]),
        f"{m}.sensor_baselines": MemoryDataset(tiny_baselines),
        f"{m}.features_test": MemoryDataset(tiny_features["test"]),
        f"{m}.features_train": MemoryDataset(tiny_features["train"]),
        f"{m}.diagnosis.reference": MemoryDataset(reference),
        "params:diagnosis": MemoryDataset(tiny_params["diagnosis"]),
        f"{m}.edge_manifest": JSONDataset(filepath=str(folder / "manifest.json")),
        f"{m}.edge_explanation": TextDataset(filepath=str(folder / "explanation.json")),
    }
    for family in EXPORTED_FAMILIES:
        package = {
            "model": tiny_models[family],
            "metrics": _metrics(m, family, 1),
            "registered_model": f"{m}-{family}",
            "registry_version": "3",
        }
        datasets[f"{m}.{family}.production_model"] = MemoryDataset(package, copy_mode="assign")
        datasets[f"{m}.edge_{family}_onnx"] = OnnxModelDataset(str(folder / f"{family}.onnx"))
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
