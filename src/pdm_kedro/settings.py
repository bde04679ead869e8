"""Project settings: config loader, custom resolvers and hooks. Kept thin on purpose."""

from pdm_kedro.console.hooks import ConsoleHook
from pdm_kedro.distributed.config_loader import FleetConfigLoader
from pdm_kedro.distributed.context import FleetContext
from pdm_kedro.distributed.hooks import ScaleOutHooks
from pdm_kedro.hooks import ConfigCheckHook, ConfigEnvHook, RunGuardHook
from pdm_kedro.paths import data_root, mlflow_artifact_location, mlflow_tracking_uri, project_root
from pdm_kedro.tracking_hook import KEDRO_MLFLOW_PLUGIN, TrackingHook

CONTEXT_CLASS = FleetContext  # machine blocks enter the catalog whole (start-up at scale)
CONFIG_LOADER_CLASS = FleetConfigLoader  # OmegaConfigLoader, machine files parsed fast
CONFIG_LOADER_ARGS = {
    "base_env": "base",
    "default_run_env": "local",
    # conf/local and environments override single keys instead of whole top-level blocks
    "merge_strategy": {"parameters": "soft"},
    "custom_resolvers": {
        "project_root": lambda: str(project_root()),
        "data_root": lambda: str(data_root()),
        "mlflow_tracking_uri": mlflow_tracking_uri,
        "mlflow_artifact_location": mlflow_artifact_location,
    },
}

# Config is checked once per session before anything runs (ConfigCheckHook); the registry builds
# the machines of the session's `--env` (ConfigEnvHook);
# ConsoleHook shows progress and ends the run with a summary.
# ScaleOutHooks: see pdm_kedro.distributed.hooks. RunGuardHook: one run per machine and data root,
# aliases only after success, interrupted runs FAILED, edge bundles swapped in whole.
# kedro-mlflow's hook, registered here as TrackingHook (parameters logged once per run, in one
# request at its start; metrics held and sent when the run ends)
DISABLE_HOOKS_FOR_PLUGINS = (KEDRO_MLFLOW_PLUGIN,)
HOOKS = (
    ConfigCheckHook(), ConfigEnvHook(), ScaleOutHooks(), ConsoleHook(), RunGuardHook(), TrackingHook(),
)  # fmt: skip
