"""Tiny native models in the family artefact contract, and a bundle written from them.

The edge tests need models without waiting for the family pipelines: these are trained here on
the tiny fixtures, seeded, in well under a second each.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xgboost as xgb
from kedro.io import MemoryDataset
from kedro_datasets.json import JSONDataset
from kedro_datasets.text import TextDataset
from sklearn.ensemble import IsolationForest
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from pdm_kedro import contract as c
from pdm_kedro.contract import feature_columns
from pdm_kedro.datasets.onnx_dataset import OnnxModelDataset
from pdm_kedro.edge.bundle import MANIFEST_FILE
from pdm_kedro.edge.explain import EXPLANATION_FILE
from pdm_kedro.evaluation import explain as ex
from pdm_kedro.pipelines.edge_export.explanation import (
    build_edge_explanation,
    describe_diagnosis_for_edge,
    describe_model_explanation,
)
from pdm_kedro.pipelines.edge_export.nodes import (
    build_edge_manifest_with_explanation,
    check_onnx_parity,
    describe_for_edge,
    export_to_onnx,
)

EXPORTED_FAMILIES = ("classification", "regression", "anomaly")
SEED = 7
ANOMALY_INPUTS = ("__zscore", "__abs_diff")


def _matrix(frame: pd.DataFrame, names: list[str]) -> np.ndarray:
    return frame[names].to_numpy(dtype=np.float32)


def _metrics(machine_id: str, family: str, n_rows: int) -> dict[str, Any]:
    return {
        "machine_id": machine_id,
        "family": family,
        "split": "test",
        "n_rows": n_rows,
        "metrics": [{"metric": "dummy", "value": 0.5, "baseline": 0.4, "baseline_name": "x"}],
        "val_metrics": {},
        "model": {"seed": SEED},
        "threshold": None,
    }


def train_tiny_models(features: dict[str, pd.DataFrame]) -> dict[str, dict[str, Any]]:
    """{family: model dict} for classification, regression and anomaly, per the contract."""
    train = features["train"]
    names = feature_columns(train)
    x = _matrix(train, names)
    clf = xgb.XGBClassifier(
        n_estimators=40, max_depth=3, learning_rate=0.2, random_state=SEED, n_jobs=1
    )
    clf.fit(x, train[c.FAILURE_WITHIN_HORIZON].to_numpy())
    reg = xgb.XGBRegressor(
        n_estimators=40, max_depth=3, learning_rate=0.2, random_state=SEED, n_jobs=1
    )
    reg.fit(x, np.minimum(train[c.RUL].to_numpy(), 150.0))
    anomaly_names = [n for n in names if n.endswith(ANOMALY_INPUTS)]
    healthy = train[train[c.ANOMALY] == 0]
    detector = make_pipeline(
        StandardScaler(), IsolationForest(n_estimators=50, random_state=SEED)
    ).fit(_matrix(healthy, anomaly_names))
    scores = -detector.decision_function(_matrix(features["val"], anomaly_names))
    return {
        "classification": {
            "family": "classification",
            "estimator": clf,
            "feature_names": names,
            "threshold": 0.3,
            "horizon_hours": 12.0,
        },
        "regression": {
            "family": "regression",
            "estimator": reg,
            "feature_names": names,
            "rul_cap_hours": 150.0,
            "cap_at_alarm_hours": 12.0,  # the classifier's horizon
        },
        "anomaly": {
            "family": "anomaly",
            "estimator": detector,
            "feature_names": anomaly_names,
            "threshold": float(np.quantile(scores, 0.97)),
            "detector": "isolation_forest",
        },
    }


def export_bundle(
    models: dict[str, dict[str, Any]],
    features: dict[str, pd.DataFrame],
    baselines: dict[str, Any],
    machine: dict[str, Any],
    params: dict[str, Any],
    folder: Path,
) -> dict[str, Any]:
    """Run the export nodes by hand and write the bundle to ``folder``; returns the manifest."""
    import json  # noqa: PLC0415

    entries, explainers = [], []
    for family in EXPORTED_FAMILIES:
        model = models[family]
        onnx_model = export_to_onnx(model, machine, params["edge_export"])
        parity = check_onnx_parity(
            model, onnx_model, features["test"], machine, params["edge_export"]
        )
        metrics = _metrics(machine["machine_id"], family, len(features["test"]))
        entries.append(describe_for_edge(model, onnx_model, metrics, parity))
        OnnxModelDataset(str(folder / f"{family}.onnx")).save(onnx_model)
        explainers.append(describe_model_explanation(model, features["train"]))
    reference = ex.fit_deviation_reference(
        features["train"], machine, baselines, params["diagnosis"]
    )
    diagnosis = describe_diagnosis_for_edge(reference, machine, baselines, params["diagnosis"])
    explanation = build_edge_explanation(machine, features["test"], diagnosis, *explainers)
    (folder / "explanation.json").write_text(explanation)
    manifest = build_edge_manifest_with_explanation(
        machine, baselines, features["test"], params["validation"], explanation, *entries
    )
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return manifest


def export_datasets(
    tiny_models: dict[str, Any],
    tiny_features: dict[str, pd.DataFrame],
    tiny_baselines: dict[str, Any],
    machine: dict[str, Any],
    tiny_params: dict[str, Any],
    folder: Path,
    registry_version: str,
) -> dict[str, Any]:
    """The edge_export template's catalog for one machine: its inputs in memory (each family's
    production package, registered as ``registry_version``) and every bundle file written into
    ``folder`` (the ONNX files, ``explanation.json`` and ``manifest.json``)."""

    m = machine["machine_id"]
    reference = ex.fit_deviation_reference(
        tiny_features["train"], machine, tiny_baselines, tiny_params["diagnosis"]
    )
    datasets: dict[str, Any] = {
        f"params:{m}.machine": MemoryDataset(machine),
        "params:edge_export": MemoryDataset(tiny_params["edge_export"]),
        "params:validation": MemoryDataset(tiny_params["validation"]),
        f"{m}.sensor_baselines": MemoryDataset(tiny_baselines),
        f"{m}.features_test": MemoryDataset(tiny_features["test"]),
        f"{m}.features_train": MemoryDataset(tiny_features["train"]),
        f"{m}.diagnosis.reference": MemoryDataset(reference),
        "params:diagnosis": MemoryDataset(tiny_params["diagnosis"]),
        f"{m}.edge_manifest": JSONDataset(filepath=str(folder / MANIFEST_FILE)),
        f"{m}.edge_explanation": TextDataset(filepath=str(folder / EXPLANATION_FILE)),
    }
    for family in EXPORTED_FAMILIES:
        package = {
            "model": tiny_models[family],
            "metrics": _metrics(m, family, 1),
            "registered_model": f"{m}-{family}",
            "registry_version": registry_version,
        }
        datasets[f"{m}.{family}.production_model"] = MemoryDataset(package, copy_mode="assign")
        datasets[f"{m}.edge_{family}_onnx"] = OnnxModelDataset(str(folder / f"{family}.onnx"))
    return datasets
