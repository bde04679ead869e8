"""Where the project keeps its data and tracking store.

The environment variables let tests and benchmarks redirect every write to a temporary folder, so
they never touch the project's own ``data/`` or ``mlflow.db``:

- ``PDM_DATA_ROOT``: replaces ``<project>/data`` in every catalog path;
- ``PDM_MLFLOW_TRACKING_URI``: replaces ``sqlite:///<project>/mlflow.db``.
"""

import os
from pathlib import Path

from kedro.utils import find_kedro_project

DATA_ROOT_ENV = "PDM_DATA_ROOT"
TRACKING_URI_ENV = "PDM_MLFLOW_TRACKING_URI"


def project_root() -> Path:
    """The Kedro project containing the working directory (or this source tree)."""
    found = find_kedro_project(Path.cwd())
    if found is not None:
        return Path(found).resolve()
    return Path(__file__).resolve().parents[2]


def data_root() -> Path:
    """Root of the data layers (``01_raw`` .. ``08_reporting``)."""
    override = os.environ.get(DATA_ROOT_ENV)
    return Path(override).resolve() if override else project_root() / "data"


def mlflow_tracking_uri() -> str:
    """MLflow tracking URI: an embedded sqlite store at the project root unless overridden."""
    return os.environ.get(TRACKING_URI_ENV) or f"sqlite:///{project_root() / 'mlflow.db'}"


def mlflow_artifact_location() -> str:
    """Artifact folder of new MLflow experiments: beside the sqlite store in use."""
    uri = mlflow_tracking_uri()
    if uri.startswith("sqlite:///"):
        return (Path(uri.removeprefix("sqlite:///")).parent / "mlartifacts").as_uri()
    return (project_root() / "mlartifacts").as_uri()
