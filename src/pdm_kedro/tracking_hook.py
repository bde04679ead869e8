"""kedro-mlflow's hook, logging each parameter once per MLflow run.

kedro-mlflow logs a node's parameter inputs before every node, so a parameter that 30 of a
machine's nodes read is logged 30 times. MLflow parameters cannot change within a run, so the
repeats carry nothing, and each costs a store write: against an ``mlflow server`` (the fleet
mode) one HTTP request, about 6 s of a machine's 24 s pipeline. :class:`TrackingHook` is the
plugin's hook with the repeats skipped; ``settings.py`` registers it in place of the plugin's
own instance (``DISABLE_HOOKS_FOR_PLUGINS``). Everything else is kedro-mlflow's behaviour.
"""

from __future__ import annotations

from typing import Any

from kedro_mlflow.framework.hooks import MlflowHook

# the plugin's distribution name, as Kedro matches it in DISABLE_HOOKS_FOR_PLUGINS
KEDRO_MLFLOW_PLUGIN = "kedro_mlflow"


class TrackingHook(MlflowHook):
    """:class:`kedro_mlflow.framework.hooks.MlflowHook` that logs a ``(name, value)`` once per run."""

    def __init__(self) -> None:
        super().__init__()
        self._logged_run: str | None = None
        self._logged: dict[str, str] = {}

    def _log_param(self, name: str, value: Any) -> Any:
        if self._logged_run != self.run_id:  # a new run (a warm worker runs many sessions)
            self._logged_run, self._logged = self.run_id, {}
        text = str(value)
        if self._logged.get(name) == text:
            return None
        result = super()._log_param(name, value)  # a changed value still fails as MLflow says
        self._logged[name] = text
        return result
