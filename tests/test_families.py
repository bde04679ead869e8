"""The family seam: the four families are level, and a toy fifth family, defined here in the test
suite alone, is trained, promoted, exported, answered by the edge runtime and reported without a
change to any module of the package."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from kedro.io import DataCatalog, MemoryDataset
from kedro.pipeline import Node, Pipeline
from kedro.runner import SequentialRunner
from sklearn.tree import DecisionTreeRegressor

from pdm_kedro import contract as c
from pdm_kedro.datasets.mlflow_model_registry import (
    MlflowModelRegistryDataset,
    MlflowPromotionDataset,
)
from pdm_kedro.datasets.onnx_dataset import OnnxModelDataset
from pdm_kedro.edge.bundle import load_bundle
from pdm_kedro.edge.runtime import predict
from pdm_kedro.evaluation.explain import fit_deviation_reference
from pdm_kedro.evaluation.model_inputs import feature_matrix, select_feature_names
from pdm_kedro.evaluation.regression_metrics import regression_metrics
from pdm_kedro.evaluation.report import metric_rows
from pdm_kedro.evaluation.tracking import registration_entry, tracking_metrics
from pdm_kedro.families import FAMILIES, Family, register_family, unregister_family
from pdm_kedro.fleet import load_project_parameters
from pdm_kedro.pipeline_registry import build_registry, discover_templates, namespace_for_machine
from pdm_kedro.pipelines.edge_export.pipeline import build_edge_export_pipeline
from pdm_kedro.pipelines.reporting.nodes import build_fleet_metrics, write_model_card
from pdm_kedro.promotion import PROMOTION_TAG, promotion_nodes, score_both
from tests.conftest import PROJECT_ROOT
from tests.edge.readings_helpers import as_readings, episode_rows
from tests.pipelines.family_catalog import promotion_datasets

TOY = "toy"
CAP = 200.0


class Kept(MemoryDataset):
    """A memory dataset the runner does not release (the test reads intermediate outputs)."""

    def _release(self) -> None:
        pass


# --- the toy family: a shallow regression tree of the capped RUL, written only here ----------------------
def fit_toy(features_train: pd.DataFrame) -> dict:
    names = select_feature_names(features_train)
    target = np.minimum(features_train[c.RUL].to_numpy(), CAP)
    estimator = DecisionTreeRegressor(max_depth=4, random_state=0)
    estimator.fit(feature_matrix(features_train, names), target)
    return {"family": TOY, "estimator": estimator, "feature_names": names, "cap_hours": CAP}


def toy_metrics(model: dict, features_test: pd.DataFrame, machine: dict) -> dict:
    y = np.minimum(features_test[c.RUL].to_numpy(), CAP)
    pred = model["estimator"].predict(feature_matrix(features_test, model["feature_names"]))
    mean = np.full(len(y), float(np.mean(y)))
    values = {"rmse": regression_metrics(y, pred)["rmse"]}
    return {
        "machine_id": machine["machine_id"],
        "family": TOY,
        "split": "test",
        "tracked_by_family": True,
        "n_rows": len(y),
        "metrics": metric_rows(values, {"rmse": regression_metrics(y, mean)["rmse"]}, "mean"),
        "val_metrics": {},
        "model": {"estimator": "DecisionTreeRegressor"},
        "threshold": None,
        "plots": [],
    }


def score_toy(challenger: dict, champion: dict | None, features_test: pd.DataFrame) -> dict:
    def score(model: dict) -> dict:
        y = np.minimum(features_test[c.RUL].to_numpy(), CAP)
        pred = model["estimator"].predict(feature_matrix(features_test, model["feature_names"]))
        return {"rmse": regression_metrics(y, pred)["rmse"]}

    return score_both(challenger, champion, features_test, score)


def toy_pipeline() -> Pipeline:
    return Pipeline(
        [
            Node(fit_toy, "features_train", "model", name="fit_toy"),
            Node(toy_metrics, ["model", "features_test", "params:machine"], "metrics", name="eval"),
            Node(tracking_metrics, "metrics", "mlflow_metrics", name="track_metrics"),
            Node(
                registration_entry,
                ["model", "metrics", "features_test", "features_val"],
                "registered_model",
                name="register_model",
            ),
            *promotion_nodes(TOY, score_toy, ["features_test"]),
        ],
        namespace=TOY,
        inputs={"features_train", "features_val", "features_test"},
        parameters={"params:machine", "params:promotion"},
    )


@pytest.fixture()
def toy_family():
    family = register_family(
        Family(
            name=TOY,
            question="How many hours of life remain (a shallow tree's guess)?",
            answer_kind="value",
            answer_key="toy_hours",
            metrics=("rmse",),
            headline="rmse",
            answer_fields={"cap_hours": "cap_hours"},
            pipeline=toy_pipeline,
        )
    )
    yield family
    unregister_family(TOY)


# --- the four families are level -------------------------------------------------------------------
@pytest.mark.parametrize("family", ["classification", "regression", "anomaly", "forecasting"])
def test_every_family_tracks_registers_promotes_and_plots_the_same_way(family):
    template = discover_templates()[family]
    names = {n.name.split(".")[-1] for n in template.nodes}
    assert {"track_metrics", "register_model", "score_for_promotion", "decide_promotion"} <= names
    outputs = template.all_outputs()
    assert {f"{family}.{d}" for d in ("mlflow_metrics", "metrics", "production_model")} <= outputs
    plots = {o for o in outputs if o.endswith("_plot")}  # one catalog pattern logs them to MLflow
    assert len(plots) == len(FAMILIES[family].plots)
    assert {f"{p.split('.')[-1].removesuffix('_plot')}.png" for p in plots} == set(
        FAMILIES[family].plots
    )
    tagged = {n.name.split(".")[-1] for n in template.nodes if PROMOTION_TAG in n.tags}
    assert tagged == {"score_for_promotion", "decide_promotion"}


# --- a fifth family --------------------------------------------------------------------------------
def test_toy_family_is_built_for_every_machine_and_exported_and_reported(toy_family):
    params = load_project_parameters(env="base", conf_source=PROJECT_ROOT / "conf")
    registry = build_registry(discover_templates(), params)
    machine = params["fleet"]["priority_machines"][0]
    pipe = registry[machine]
    assert f"{machine}.{TOY}.production_model" in pipe.all_outputs()
    assert f"{machine}.edge_{TOY}_onnx" in pipe.all_outputs()  # the exporter iterates families
    manifest_node = next(n for n in pipe.nodes if n.name.endswith("build_edge_manifest"))
    assert f"{machine}.edge_{TOY}_entry" in manifest_node.inputs
    card = next(n for n in pipe.nodes if n.name.endswith("write_model_card"))
    assert f"{machine}.{TOY}.metrics" in card.inputs  # the card reads every family's metrics
    fleet = next(n for n in registry["__default__"].nodes if n.name == "build_fleet_metrics")
    assert f"{machine}.{TOY}.metrics" in fleet.inputs


def test_toy_family_is_trained_exported_answered_and_reported(
    toy_family, tiny_features, tiny_splits, tiny_baselines, machine, tiny_params, tmp_path
):
    m = machine["machine_id"]
    folder = tmp_path / "edge"
    pipe = namespace_for_machine(toy_pipeline() + build_edge_export_pipeline([TOY]), m)
    datasets = {
        f"params:{m}.machine": MemoryDataset(machine),
        "params:edge_export": MemoryDataset(tiny_params["edge_export"]),
        "params:validation": MemoryDataset(tiny_params["validation"]),
        f"{m}.sensor_baselines": MemoryDataset(tiny_baselines),
        **{f"{m}.features_{s}": MemoryDataset(tiny_features[s]) for s in ("train", "val", "test")},
        **promotion_datasets(m, TOY),
        f"{m}.edge_{TOY}_onnx": OnnxModelDataset(str(folder / f"{TOY}.onnx")),
        # explanation.json: the diagnosis part (a toy model has no explanation of its own)
        "params:diagnosis": MemoryDataset(tiny_params["diagnosis"]),
        f"{m}.diagnosis.reference": MemoryDataset(
            fit_deviation_reference(
                tiny_features["train"], machine, tiny_baselines, tiny_params["diagnosis"]
            )
        ),
        # the catalog's registry datasets (no MLflow run here: the run's own model flows through)
        f"{m}.{TOY}.registered_model": MlflowModelRegistryDataset(f"{m}-{TOY}"),
        f"{m}.{TOY}.production_model": MlflowPromotionDataset(
            f"{m}-{TOY}", audit_path=str(tmp_path / "promotions.jsonl")
        ),
    }
    kept = {n: Kept(copy_mode="assign") for n in pipe.all_outputs() if n not in datasets}
    catalog = DataCatalog({**kept, **datasets})
    SequentialRunner().run(pipe, catalog)
    # trained and promoted (first version)
    audit = [json.loads(line) for line in (tmp_path / "promotions.jsonl").read_text().splitlines()]
    assert [(a["family"], a["decision"], a["headline"]) for a in audit] == [
        (TOY, "promote", "rmse")
    ]
    assert catalog[f"{m}.{TOY}.production_model"].load()["model"]["family"] == TOY
    # exported: the ONNX file, ONNX parity on every test row, a manifest entry of its kind
    parity = catalog[f"{m}.edge_{TOY}_parity"].load()
    assert parity["passed"] and parity["rows"] == len(tiny_features["test"])
    manifest = catalog[f"{m}.edge_manifest"].load()
    (folder / "manifest.json").write_text(json.dumps(manifest))
    (folder / "explanation.json").write_text(catalog[f"{m}.edge_explanation"].load())
    entry = manifest["models"][TOY]
    assert entry["answer"] == {
        "key": "toy_hours",
        "kind": "value",
        "fields": {"cap_hours": "cap_hours"},
    }
    # answered by the edge runtime, equal to the native model on the same rows
    bundle = load_bundle(folder)
    raw_test = tiny_splits[2]
    episode = raw_test[c.EPISODE].unique()[0]
    sensors = [s["name"] for s in manifest["sensors"]]
    readings = as_readings(episode_rows(raw_test, episode), sensors)
    answer = predict(bundle, readings, all_rows=True, from_episode_start=True)
    model = catalog[f"{m}.{TOY}.model"].load()
    rows = tiny_features["test"][tiny_features["test"][c.EPISODE] == episode]
    rows = rows.sort_values(c.TIMESTAMP, kind="stable")
    native = model["estimator"].predict(feature_matrix(rows, model["feature_names"]))
    np.testing.assert_allclose(answer["toy_hours"]["value"], native, rtol=1e-4, atol=1e-3)
    assert answer["toy_hours"]["cap_hours"] == CAP
    # reported: the model card and the fleet table
    metrics = catalog[f"{m}.{TOY}.metrics"].load()
    card = write_model_card(machine, tiny_params["reporting"], tiny_baselines, metrics)
    assert "### toy" in card and "| toy | rmse |" in card
    table = build_fleet_metrics(metrics)
    assert table["family"].tolist() == [TOY] and table["metric"].tolist() == ["rmse"]
    assert catalog[f"{m}.{TOY}.mlflow_metrics"].load()["rmse"]["value"] == table["value"][0]
