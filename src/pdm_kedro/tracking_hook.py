"""kedro-mlflow's hook, logging each parameter once per MLflow run.

kedro-mlflow logs a node's parameter inputs before every node, so a parameter that 30 of a
machine's nodes read is logged 30 times. MLflow parameters cannot change within a run, so the
repeats carry nothing, and each costs a store write: against an ``mlflow server`` (the fleet
mode) one HTTP request, about 6 s of a machine's 24 s pipeline. :class:`TrackingHook` is the
plugin's hook with the repeats skipped; ``settings.py`` registers it in place of the plugin's
own instance (``DISABLE_HOOKS_FOR_PLUGINS``).

Two more requests saved per run:

- every parameter the pipeline reads is logged at its start in one ``log_batch`` (the names
  and values kedro-mlflow would log node by node: flattened and sanitised the same way; a
  value too long for MLflow still goes the plugin's way, ``long_params_strategy``), so the
  nodes find them logged;
- the metrics datasets' saves are held while the run goes and sent together before the run
  closes, also when it fails (:mod:`pdm_kedro.datasets.mlflow_metrics`).

Everything else is kedro-mlflow's behaviour.
"""

from __future__ import annotations

import logging
from typing import Any

from kedro.framework.hooks import hook_impl
from kedro_mlflow.framework.hooks import MlflowHook
from kedro_mlflow.framework.hooks.utils import _flatten_dict
from mlflow.entities import Param
from mlflow.tracking import MlflowClient
from mlflow.utils.validation import MAX_PARAM_VAL_LENGTH, MAX_PARAMS_TAGS_PER_BATCH

from pdm_kedro.datasets.mlflow_metrics import flush_held_metrics, hold_metrics

logger = logging.getLogger(__name__)

# the plugin's distribution name, as Kedro matches it in DISABLE_HOOKS_FOR_PLUGINS
KEDRO_MLFLOW_PLUGIN = "kedro_mlflow"


class TrackingHook(MlflowHook):
    """:class:`kedro_mlflow.framework.hooks.MlflowHook` that logs a ``(name, value)`` once per run."""

    def __init__(self) -> None:
        super().__init__()
        self._logged_run: str | None = None
        self._logged: dict[str, str] = {}

    def _logged_this_run(self) -> dict[str, str]:
        """``{name: value as logged}`` of the current run (a warm worker runs many sessions)."""
        if self._logged_run != self.run_id:
            self._logged_run, self._logged = self.run_id, {}
        return self._logged

    def _log_param(self, name: str, value: Any) -> Any:
        logged = self._logged_this_run()
        text = str(value)
        if logged.get(name) == text:
            return None
        result = super()._log_param(name, value)  # a changed value still fails as MLflow says
        logged[name] = text
        return result

    @hook_impl
    def before_pipeline_run(self, run_params: dict[str, Any], pipeline: Any, catalog: Any) -> None:
        """kedro-mlflow's start of the run; then the pipeline's parameters in one request, and
        the metrics held until the run ends."""
        super().before_pipeline_run(run_params=run_params, pipeline=pipeline, catalog=catalog)
        if not (self._is_mlflow_enabled and self.run_id is not None):
            return
        self._log_pipeline_params(pipeline, catalog)
        hold_metrics(self.run_id)

    @hook_impl
    def after_pipeline_run(self, run_params: dict[str, Any], pipeline: Any, catalog: Any) -> None:
        """The held metrics, then kedro-mlflow's end of the run (also when sending failed: the
        error is then the run's)."""
        try:
            flush_held_metrics()
        finally:
            super().after_pipeline_run(run_params=run_params, pipeline=pipeline, catalog=catalog)

    @hook_impl
    def on_pipeline_error(
        self, error: Exception, run_params: dict[str, Any], pipeline: Any, catalog: Any
    ) -> None:
        """The metrics of the nodes that finished are kept: sent before the run is closed. If
        they cannot be sent, a warning says so and the run's own error stays the one raised."""
        try:
            flush_held_metrics()
        except Exception as send_error:  # noqa: BLE001 (the node's error matters more)
            logger.warning(
                "the metrics of the failed run could not be sent to MLflow: %s: %s",
                type(send_error).__name__,
                send_error,
            )
        finally:
            super().on_pipeline_error(
                error=error, run_params=run_params, pipeline=pipeline, catalog=catalog
            )

    def _param_items(self, inputs: dict[str, Any]) -> dict[str, Any]:
        """The names and values kedro-mlflow's ``before_node_run`` logs for these inputs."""
        params = {}
        for name, value in inputs.items():
            if name.startswith("params:"):
                params[name[len("params:") :]] = value
            elif name == "parameters":
                params[name] = value
        if self.flatten:
            params = _flatten_dict(d=params, recursive=self.recursive, sep=self.sep)
        return {self.sanitize_param_name(k): v for k, v in params.items()}

    def _log_pipeline_params(self, pipeline: Any, catalog: Any) -> None:
        """Every parameter input of ``pipeline``, logged in ``log_batch`` requests."""
        names = sorted(n for n in pipeline.inputs() if n.startswith("params:") or n == "parameters")
        items = self._param_items({name: catalog.load(name) for name in names})
        logged = self._logged_this_run()
        batch = []
        for name, value in items.items():
            text = str(value)
            if len(text) > MAX_PARAM_VAL_LENGTH:
                self._log_param(name, value)  # tag, truncate or fail: the plugin's strategy
            elif logged.get(name) != text:
                batch.append(Param(name, text))
        client = MlflowClient()
        for start in range(0, len(batch), MAX_PARAMS_TAGS_PER_BATCH):
            client.log_batch(self.run_id, params=batch[start : start + MAX_PARAMS_TAGS_PER_BATCH])
        logged.update({param.key: param.value for param in batch})
