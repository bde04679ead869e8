"""Project hooks."""

from __future__ import annotations

from pathlib import Path

import kedro.framework.project as kedro_project
from kedro.framework.context import KedroContext
from kedro.framework.hooks import hook_impl

from pdm_kedro import pipeline_registry
from pdm_kedro.config_check import check_parameters
from pdm_kedro.locks import init_tracking_store
from pdm_kedro.paths import mlflow_artifact_location, mlflow_tracking_uri, use_session_env


class ConfigEnvHook:
    """Let the pipeline registry see the session's configuration environment.

    ``register_pipelines()`` gets no config, and ``kedro run -e cmapss`` does not set
    ``KEDRO_ENV``. A session creates its context (this hook) before it first reads the pipelines,
    so recording ``context.env`` here makes the registry build the machines of that environment.
    ``tryfirst``: before plugin hooks, which may read the pipelines through ``context.params``.
    """

    @hook_impl(tryfirst=True)
    def after_context_created(self, context: KedroContext) -> None:
        """Record the environment the registry reads the machine list from."""
        changed = pipeline_registry.use_config_env(context.env)
        package = kedro_project.PACKAGE_NAME  # set by bootstrap_project, so read it now
        if changed and package:
            # a second session in the same process with another env: rebuild the registry
            kedro_project.pipelines.configure(f"{package}.pipeline_registry")
        # the embedded MLflow store is created/migrated once, under a file lock, before
        # kedro-mlflow or any run touches it (two first runs at once raced the migration); the
        # session's env picks which store (data/<env>/mlflow.db), so record it first
        use_session_env(context.env)
        init_tracking_store(mlflow_tracking_uri(), mlflow_artifact_location())


class ConfigCheckHook:
    """Validate the session's configuration once, when its context is created: before the
    pipelines are read and before any node runs (see :mod:`pdm_kedro.config_check`)."""

    @hook_impl(tryfirst=True)
    def after_context_created(self, context: KedroContext) -> None:
        """Raise :class:`pdm_kedro.config_check.ConfigError` naming file, key and allowed values."""
        check_parameters(context.params, Path(context.config_loader.conf_source), context.env)
