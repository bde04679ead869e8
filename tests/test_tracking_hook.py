"""The project's kedro-mlflow hook: each parameter logged once per run, registered once."""

from __future__ import annotations

import logging
from importlib.metadata import distribution
from pathlib import Path

import mlflow
import pytest
from kedro_mlflow.framework.hooks import MlflowHook

from pdm_kedro import settings
from pdm_kedro.tracking_hook import KEDRO_MLFLOW_PLUGIN, TrackingHook


@pytest.fixture
def logged(tmp_path, monkeypatch) -> list[tuple[str, object]]:
    """Every ``mlflow.log_param`` call (still made for real, on a tmp sqlite store)."""
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    # an experiment of this store (another test of the worker may have set an active one)
    mlflow.set_experiment("tracking-hook")
    calls: list[tuple[str, object]] = []
    real = mlflow.log_param

    def counting(key, value, *args, **kwargs):  # noqa: ANN001, ANN202
        calls.append((key, value))
        return real(key, value, *args, **kwargs)

    monkeypatch.setattr(mlflow, "log_param", counting)
    yield calls
    while mlflow.active_run() is not None:
        mlflow.end_run()
    mlflow.set_tracking_uri(None)


def test_a_parameter_read_by_many_nodes_is_logged_once_per_run(logged) -> None:
    hook = TrackingHook()
    with mlflow.start_run() as run:
        hook.run_id = run.info.run_id
        for _ in range(5):  # five nodes read the same two parameters
            hook._log_param("features", {"windows": [3, 12]})
            hook._log_param("seed", 42)
        stored = mlflow.get_run(run.info.run_id).data.params
    assert logged == [("features", {"windows": [3, 12]}), ("seed", 42)]
    assert stored == {"features": "{'windows': [3, 12]}", "seed": "42"}

    with mlflow.start_run() as second:  # a new run (the next session of a warm worker) logs again
        hook.run_id = second.info.run_id
        hook._log_param("seed", 42)
    assert logged[-1] == ("seed", 42)
    assert len(logged) == 3


def test_a_changed_value_still_reaches_mlflow_and_fails_as_it_says(logged) -> None:
    hook = TrackingHook()
    with mlflow.start_run() as run:
        hook.run_id = run.info.run_id
        hook._log_param("seed", 42)
        with pytest.raises(mlflow.exceptions.MlflowException, match="seed"):
            hook._log_param("seed", 43)
    assert logged == [("seed", 42), ("seed", 43)]


def test_the_plugin_hook_is_replaced_not_doubled(isolated_project_env) -> None:
    """kedro-mlflow's own instance is disabled by its distribution name; ours is registered."""
    from kedro.framework.session import KedroSession  # noqa: PLC0415
    from kedro.framework.startup import bootstrap_project  # noqa: PLC0415

    assert distribution(KEDRO_MLFLOW_PLUGIN).metadata["name"] in settings.DISABLE_HOOKS_FOR_PLUGINS
    project = Path(__file__).resolve().parents[1]
    bootstrap_project(project)
    with KedroSession.create(project_path=project) as session:
        hooks = [p for p in session._hook_manager.get_plugins() if isinstance(p, MlflowHook)]  # noqa: SLF001
    assert len(hooks) == 1
    assert isinstance(hooks[0], TrackingHook)


def test_the_pipeline_parameters_go_in_one_request_before_the_nodes(logged, monkeypatch) -> None:
    """At the start of the run: every parameter input, named as kedro-mlflow names it (flattened),
    in one ``log_batch``; the nodes then log nothing more."""
    from kedro.io import DataCatalog, MemoryDataset  # noqa: PLC0415
    from kedro.pipeline import Pipeline, node  # noqa: PLC0415
    from mlflow.tracking import MlflowClient  # noqa: PLC0415

    def identity(*args):  # noqa: ANN002, ANN202
        return args[0]

    pipe = Pipeline([
        node(identity, ["readings", "params:features", "params:seed"], "a", name="one"),
        node(identity, ["a", "params:seed"], "b", name="two"),
    ])  # fmt: skip
    params = {"params:features": {"windows": [3, 12], "lags": 2}, "params:seed": 42}
    catalog = DataCatalog({name: MemoryDataset(value) for name, value in params.items()})
    batches = []
    real = MlflowClient.log_batch

    def counting(self, run_id, *args, **kwargs):  # noqa: ANN001, ANN202
        batches.append(kwargs.get("params"))
        return real(self, run_id, *args, **kwargs)

    monkeypatch.setattr(MlflowClient, "log_batch", counting)
    hook = TrackingHook()
    hook.flatten, hook.recursive, hook.sep = True, True, "."
    hook.long_params_strategy = "fail"
    hook._is_mlflow_enabled = True
    with mlflow.start_run() as run:
        hook.run_id = run.info.run_id
        hook._log_pipeline_params(pipe, catalog)
        for each in pipe.nodes:  # what kedro-mlflow's before_node_run logs for each node
            inputs = {name: params[name] for name in each.inputs if name in params}
            for name, value in hook._param_items(inputs).items():
                hook._log_param(name, value)
        stored = mlflow.get_run(run.info.run_id).data.params
    assert len(batches) == 1
    assert stored == {"features.windows": "[3, 12]", "features.lags": "2", "seed": "42"}
    assert logged == []  # no per-parameter request


def test_metrics_are_held_during_the_run_and_sent_at_its_end(logged) -> None:
    """Saved metrics reach the run only when it ends (after the models: no history reads), and
    all of them, in the order saved."""
    from mlflow.tracking import MlflowClient  # noqa: PLC0415

    from pdm_kedro.datasets.mlflow_metrics import (  # noqa: PLC0415
        MlflowMetricsBatchDataset,
        flush_held_metrics,
        hold_metrics,
    )

    with mlflow.start_run() as run:
        hold_metrics(run.info.run_id)
        try:
            MlflowMetricsBatchDataset(prefix="m1.classification").save(
                {"f1": {"value": 0.5, "step": 0}}
            )
            MlflowMetricsBatchDataset(prefix="m1.regression").save(
                {"rmse": {"value": 9.0, "step": 0}}
            )
            assert MlflowClient().get_run(run.info.run_id).data.metrics == {}
        finally:
            sent = flush_held_metrics()
    assert sent == 2
    assert MlflowClient().get_run(run.info.run_id).data.metrics == {
        "m1.classification.f1": 0.5,
        "m1.regression.rmse": 9.0,
    }
    # no longer holding: the next save is sent at once
    with mlflow.start_run() as second:
        MlflowMetricsBatchDataset(prefix="m2.anomaly").save({"f1": {"value": 0.9, "step": 0}})
        assert MlflowClient().get_run(second.info.run_id).data.metrics == {"m2.anomaly.f1": 0.9}


def test_a_failed_run_keeps_the_metrics_of_the_nodes_that_finished(logged) -> None:
    from mlflow.tracking import MlflowClient  # noqa: PLC0415

    from pdm_kedro.datasets.mlflow_metrics import MlflowMetricsBatchDataset, hold_metrics  # noqa: PLC0415

    hook = TrackingHook()
    hook._is_mlflow_enabled = True
    hook._already_active_mlflow = True  # kedro-mlflow then leaves the run open (closed below)
    with mlflow.start_run() as run:
        hold_metrics(run.info.run_id)
        MlflowMetricsBatchDataset(prefix="m1.classification").save(
            {"f1": {"value": 0.5, "step": 0}}
        )
        hook.on_pipeline_error(
            error=RuntimeError("a later node failed"), run_params={}, pipeline=None, catalog=None
        )
    assert MlflowClient().get_run(run.info.run_id).data.metrics == {"m1.classification.f1": 0.5}


def test_metrics_that_cannot_be_sent_on_a_failed_run_warn_and_keep_the_run_error(
    logged, caplog
) -> None:
    """The node's error is what the user sees; the lost metrics are named in a warning."""
    from pdm_kedro.datasets.mlflow_metrics import (  # noqa: PLC0415
        MlflowMetricsBatchDataset,
        hold_metrics,
    )

    missing_run = "0" * 32  # a run the store does not have: sending fails
    hook = TrackingHook()
    hook._is_mlflow_enabled = True
    hook._already_active_mlflow = True
    with mlflow.start_run():
        hold_metrics(missing_run)
        dataset = MlflowMetricsBatchDataset(run_id=missing_run, prefix="m1.classification")
        dataset.save({"f1": {"value": 0.5, "step": 0}})
        hook_logger = logging.getLogger("pdm_kedro.tracking_hook")
        hook_logger.addHandler(caplog.handler)  # whatever the project's logging config did
        try:
            hook.on_pipeline_error(
                error=RuntimeError("a node failed"), run_params={}, pipeline=None, catalog=None
            )
        finally:
            hook_logger.removeHandler(caplog.handler)
    assert "metrics of the failed run could not be sent" in caplog.text
    assert "not found" in caplog.text  # MLflow's reason
