"""The project's kedro-mlflow hook: each parameter logged once per run, registered once."""

from __future__ import annotations

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
