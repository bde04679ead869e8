"""Each notebook under notebooks/ runs headless, top to bottom, against a small isolated run.

The fixture runs the documented small-config command for one machine (``conf/small``) with
``PDM_DATA_ROOT`` / ``PDM_MLFLOW_TRACKING_URI`` in a temporary folder, then executes every notebook
with nbclient in ``notebooks/`` (as ``kedro jupyter`` would): the kernel inherits the environment,
so ``%load_ext kedro.ipython`` and ``catalog.load(...)`` read that temporary run. Any cell error
fails the test. Notebooks are stored without outputs.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from tests.conftest import TEST_MACHINE
from tests.docs.kedro_cli import PROJECT_ROOT, isolated_env, make_project_shim, run_kedro

pytestmark = pytest.mark.slow

NOTEBOOKS_DIR = PROJECT_ROOT / "notebooks"
NOTEBOOKS = ["exploratory_analysis", "model_comparison", "feature_importance_analysis"]
SMALL_RUN_COMMAND = f"kedro run -e small --namespaces {TEST_MACHINE}"
# the user guide's one-family command, re-run on the features of the small run
FAMILY_RUN_COMMAND = f"kedro run -e small --pipelines classification --namespaces {TEST_MACHINE}"
CELL_TIMEOUT_S = 180


def test_every_notebook_is_tested():
    assert sorted(p.stem for p in NOTEBOOKS_DIR.glob("*.ipynb")) == sorted(NOTEBOOKS)


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_is_stored_without_outputs(name):
    book = nbformat.read(NOTEBOOKS_DIR / f"{name}.ipynb", as_version=4)
    code = [cell for cell in book.cells if cell.cell_type == "code"]
    assert code and all(not c.outputs and c.execution_count is None for c in code)
    source = "\n".join(c.source for c in code)
    assert "%load_ext kedro.ipython" in source and "catalog.load(" in source
    assert "/data/" not in source and ".parquet" not in source  # no hard-coded paths


@pytest.fixture(scope="module")
def small_run(tmp_path_factory) -> dict[str, str]:
    """The environment of a finished small run of the test machine."""
    root = tmp_path_factory.mktemp("notebooks")
    env = isolated_env(root)
    shim = make_project_shim(root)
    run_kedro(SMALL_RUN_COMMAND, cwd=shim, env=env)
    run_kedro(FAMILY_RUN_COMMAND, cwd=shim, env=env)
    return env


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_runs_without_errors(name, small_run, monkeypatch):
    for key in ("PDM_DATA_ROOT", "PDM_MLFLOW_TRACKING_URI", "KEDRO_DISABLE_TELEMETRY"):
        monkeypatch.setenv(key, small_run[key])
    monkeypatch.setenv("PDM_NOTEBOOK_MACHINE", TEST_MACHINE)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    book = nbformat.read(NOTEBOOKS_DIR / f"{name}.ipynb", as_version=4)
    client = NotebookClient(
        book,
        timeout=CELL_TIMEOUT_S,
        kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOKS_DIR)}},
    )
    client.execute()  # raises CellExecutionError on the first failing cell
    outputs = [o for cell in book.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    assert any(o.get("output_type") == "display_data" for o in outputs)  # at least one figure


def test_notebooks_read_the_isolated_store_not_the_project(small_run):
    assert not Path(small_run["PDM_DATA_ROOT"]).resolve().is_relative_to(PROJECT_ROOT)
