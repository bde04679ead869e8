"""Where the project keeps its data and tracking store.

The environment variables let tests and benchmarks redirect every write to a temporary folder, so
they never touch the project's own ``data/`` or ``mlflow.db``:

- ``PDM_DATA_ROOT``: replaces ``<project>/data`` in every catalog path;
- ``PDM_MLFLOW_TRACKING_URI``: replaces ``sqlite:///<project>/mlflow.db``.

Each configuration environment has its own data root and MLflow store, so ``kedro run -e small``
never overwrites what the full run wrote: the default run (``base``/``local``) uses
``<project>/data`` and ``<project>/mlflow.db``; any other environment ``<env>`` uses
``<project>/data/<env>/`` and ``<project>/data/<env>/mlflow.db``. The session's environment is
recorded by :class:`pdm_kedro.console.hooks.ConsoleHook` (``use_session_env``) before the catalog
and kedro-mlflow read these paths. ``PDM_DATA_ROOT`` / ``PDM_MLFLOW_TRACKING_URI`` win over it.
"""

import os
from pathlib import Path

from kedro.utils import find_kedro_project

DATA_ROOT_ENV = "PDM_DATA_ROOT"
TRACKING_URI_ENV = "PDM_MLFLOW_TRACKING_URI"
# Environments that write to the project's own data/ and mlflow.db.
DEFAULT_ENVS = frozenset({"base", "local"})

_session_env: str | None = None


def use_session_env(env: str | None) -> None:
    """Record the Kedro session's ``--env`` (``KEDRO_ENV``): it picks the data root and store."""
    global _session_env  # noqa: PLW0603
    _session_env = env


def session_env() -> str | None:
    """The recorded environment, or None for the default (``base``/``local``) one."""
    return None if _session_env in DEFAULT_ENVS else _session_env


def project_root() -> Path:
    """The Kedro project containing the working directory (or this source tree)."""
    found = find_kedro_project(Path.cwd())
    if found is not None:
        return Path(found).resolve()
    return Path(__file__).resolve().parents[2]


def data_root() -> Path:
    """Root of the data layers (``01_raw`` .. ``08_reporting``)."""
    override = os.environ.get(DATA_ROOT_ENV)
    if override:
        return Path(override).resolve()
    env = session_env()
    return project_root() / "data" / env if env else project_root() / "data"


def mlflow_tracking_uri() -> str:
    """MLflow tracking URI: an embedded sqlite store (one per environment) unless overridden."""
    override = os.environ.get(TRACKING_URI_ENV)
    if override:
        return override
    env = session_env()
    folder = project_root() / "data" / env if env else project_root()
    return f"sqlite:///{folder / 'mlflow.db'}"


def mlflow_artifact_location() -> str | None:
    """Artifact folder of new MLflow experiments: beside the sqlite store in use.

    None for a tracking server (``http(s)://``, or any other non-sqlite store): a new
    experiment gets the server's own default (artifacts proxied through it, or its
    ``--default-artifact-root``). A folder of this host, as it used to be
    (``<project>/mlartifacts``), is wrong for a server other hosts log to as well.
    """
    uri = mlflow_tracking_uri()
    if uri.startswith("sqlite:///"):
        return (Path(uri.removeprefix("sqlite:///")).parent / "mlartifacts").as_uri()
    return None
