"""The data_ingestion template for one namespace, then validation and features, in memory; and the
registry's handling of file sources and configuration environments."""

from __future__ import annotations

import pytest
from kedro.io import DataCatalog, MemoryDataset
from kedro.pipeline import Node, Pipeline
from kedro.runner import SequentialRunner

from pdm_kedro import contract as c
from pdm_kedro.fleet import load_project_parameters
from pdm_kedro.pipeline_registry import build_registry, namespace_for_machine
from pdm_kedro.pipelines import (
    data_generation,
    data_ingestion,
    data_validation,
    feature_engineering,
)
from tests.conftest import PROJECT_ROOT
from tests.pipelines.family_catalog import LoadsNone

STAGES = ("data_ingestion", "data_validation", "feature_engineering")


def _count_rows(frame):
    return len(frame)


def _family(name: str) -> Pipeline:
    """A stand-in model family: one node in the family's namespace reading machine features."""
    node = Node(_count_rows, "features_train", "n_rows", name="count_rows")
    return Pipeline([node], namespace=name, inputs={"features_train"})


@pytest.fixture(scope="module")
def templates() -> dict[str, Pipeline]:
    """The foundation and ingestion templates, stand-in families and a cross-family stage (fast:
    the real family modules are not imported)."""
    found = {
        "data_generation": data_generation.create_pipeline(),
        "data_ingestion": data_ingestion.create_pipeline(),
        "data_validation": data_validation.create_pipeline(),
        "feature_engineering": feature_engineering.create_pipeline(),
    }
    families = {name: _family(name) for name in ("classification", "regression", "anomaly")}
    export = sum(
        (
            Pipeline(
                [Node(_count_rows, "features_test", "entry", name="export")],
                namespace=f,
                inputs={"features_test"},
            )
            for f in families
        ),
        Pipeline([]),
    )
    return {**found, **families, "cross_family_export": export}


def test_file_machine_runs_through_validation_and_features(
    cycle_files, engine, project_params, templates
):
    machine_id = engine["machine_id"]
    pipe = sum(
        (namespace_for_machine(templates[stage], machine_id) for stage in STAGES),
        start=namespace_for_machine(templates[STAGES[0]], machine_id).filter(node_names=[]),
    )
    params = {**project_params, "labels": {"failure_horizon_hours": 3}}
    datasets = {
        f"{machine_id}.source_files": MemoryDataset(cycle_files),
        f"params:{machine_id}.machine": MemoryDataset(engine),
        **{
            f"params:{k}": MemoryDataset(params[k])
            for k in ("labels", "splits", "validation", "retraining_data")
        },
        f"{machine_id}.served_sensor_baselines": LoadsNone(),  # a first run
        "params:features": MemoryDataset({**params["features"], "windows_hours": [2, 4]}),
    }
    outputs = [f"{machine_id}.{name}" for name in ("source_report", "features_test")]
    datasets.update({name: MemoryDataset() for name in outputs})
    catalog = DataCatalog(datasets=datasets)
    SequentialRunner().run(pipe, catalog)
    report = catalog.load(f"{machine_id}.source_report")
    assert report["families"]["regression"]["trained"]
    features = catalog.load(f"{machine_id}.features_test")
    assert set(features[c.EPISODE]) == {1001, 1002}
    assert {c.RUL, c.FAILURE_WITHIN_HORIZON} <= set(features.columns)
    assert "s_temp__mean_4h" in features.columns


def _machines(pipe) -> set[str]:
    return {node.namespace.split(".")[0] for node in pipe.nodes if node.namespace}


def test_cmapss_environment_runs_only_its_machine_with_ingestion_and_its_families(templates):
    params = load_project_parameters(env="cmapss", conf_source=PROJECT_ROOT / "conf")
    registry = build_registry(templates, params)
    assert _machines(registry["__default__"]) == {"cmapss_fd001"}
    names = {node.name for node in registry["cmapss_fd001"].nodes}
    assert "cmapss_fd001.standardise_source_files" in names
    assert not any(".simulate_" in name for name in names)
    assert "cmapss_fd001.regression.count_rows" in names  # families it lists are built
    assert "cmapss_fd001.classification.export" in names
    assert not any(name.startswith("cmapss_fd001.anomaly.") for name in names)  # nor exported
    base = load_project_parameters(env="base", conf_source=PROJECT_ROOT / "conf")
    base_registry = build_registry(templates, base)
    assert "cmapss_fd001" not in _machines(base_registry["fleet"])
    assert "data_ingestion" not in {n.name.split(".")[-1] for n in base_registry["fleet"].nodes}


def test_session_env_reaches_the_registry(monkeypatch, templates, isolated_project_env):
    from pdm_kedro import paths, pipeline_registry
    from pdm_kedro.hooks import ConfigEnvHook

    monkeypatch.setattr(pipeline_registry, "_config_env", None)
    # the hook records the env and creates that env's MLflow store: both stay in this test
    # (isolated_project_env sends the store to tmp_path, not the project's data/skab/)
    monkeypatch.setattr(paths, "_session_env", None)
    monkeypatch.delenv("KEDRO_ENV", raising=False)
    monkeypatch.setattr(pipeline_registry, "discover_templates", lambda: templates)

    class Context:
        env = "skab"

    ConfigEnvHook().after_context_created(Context())
    assert _machines(pipeline_registry.register_pipelines()["__default__"]) == {"skab_valve1"}
