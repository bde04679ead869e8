"""A real `kedro run` of the supervised families on one machine tracks into a temporary store
(the project's `mlflow.db` is never touched): prefixed metrics, plot artifacts, registered models."""

import json

import mlflow
import pytest
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project
from mlflow.tracking import MlflowClient

from pdm_kedro.datasets.mlflow_model_registry import load_package
from tests.conftest import PROJECT_ROOT, TEST_MACHINE

STAGES = ["classification", "regression"]
FEW_TREES = {"xgboost": {"n_estimators": 40, "n_jobs": 1}, "early_stopping_rounds": 10}


@pytest.mark.slow
def test_tracking_writes_to_the_temporary_store_only(
    isolated_project_env, tiny_features, tiny_hidden_state, tiny_splits, tiny_baselines
):
    project_db = PROJECT_ROOT / "mlflow.db"
    before = project_db.stat().st_mtime_ns if project_db.exists() else None
    features = isolated_project_env / "data" / "04_feature" / TEST_MACHINE
    features.mkdir(parents=True)
    for split, frame in tiny_features.items():  # the tiny data stand in for the upstream stages
        frame.to_parquet(features / f"features_{split}.parquet")
    raw = isolated_project_env / "data" / "01_raw" / TEST_MACHINE
    raw.mkdir(parents=True)
    for split, frame in tiny_hidden_state.items():
        frame.to_parquet(raw / f"hidden_state_{split}.parquet")
    # what promotion rebuilds a champion's features from: the validated splits and baselines
    intermediate = isolated_project_env / "data" / "02_intermediate" / TEST_MACHINE
    intermediate.mkdir(parents=True)
    for split, frame in zip(("train", "val", "test"), tiny_splits, strict=True):
        frame.to_parquet(intermediate / f"validated_{split}.parquet")
    models = isolated_project_env / "data" / "06_models" / TEST_MACHINE
    models.mkdir(parents=True)
    (models / "sensor_baselines.json").write_text(json.dumps(tiny_baselines))

    bootstrap_project(PROJECT_ROOT)
    try:
        small = dict.fromkeys(STAGES, FEW_TREES)  # deep-merged into the project's parameters
        with KedroSession.create(project_path=PROJECT_ROOT, runtime_params=small) as session:
            session.run(pipeline_names=STAGES, namespaces=[TEST_MACHINE])
    finally:
        while mlflow.active_run():  # kedro-mlflow can leave a node-level run open in-process
            mlflow.end_run()

    after = project_db.stat().st_mtime_ns if project_db.exists() else None
    assert after == before
    client = MlflowClient(tracking_uri=f"sqlite:///{isolated_project_env / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("pdm_kedro")
    (run,) = client.search_runs([experiment.experiment_id])
    metrics = run.data.metrics
    assert run.data.params["classification"].count("'n_estimators': 40") == 1
    assert f"{TEST_MACHINE}.classification.f1" in metrics
    assert f"{TEST_MACHINE}.classification.baseline_f1" in metrics
    assert f"{TEST_MACHINE}.regression.rmse" in metrics
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id, TEST_MACHINE)}
    assert {f"{TEST_MACHINE}/classification", f"{TEST_MACHINE}/regression"} <= artifacts
    for family in STAGES:
        champion = client.get_model_version_by_alias(f"{TEST_MACHINE}-{family}", "champion")
        assert champion.tags["machine_id"] == TEST_MACHINE and champion.tags["test_fingerprint"]
        # the registered model carries the baselines its features were built with
        previous = mlflow.get_tracking_uri()
        mlflow.set_tracking_uri(client.tracking_uri)  # models:/ URIs resolve against it
        try:
            package = load_package(f"{TEST_MACHINE}-{family}", "champion", client)
        finally:
            mlflow.set_tracking_uri(previous)
        assert package["model"]["sensor_baselines"] == tiny_baselines
    reports = isolated_project_env / "data" / "08_reporting" / TEST_MACHINE
    assert (reports / "classification" / "pr_curve.png").exists()
    assert (reports / "regression" / "metrics.json").exists()
