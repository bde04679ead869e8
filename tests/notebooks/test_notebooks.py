"""Each notebook under notebooks/ runs headless, top to bottom, on the session's shared small run.

The shared run (``tests/conftest.py::small_run``) left its products in a temporary data root and
MLflow store; every notebook executes with nbclient in ``notebooks/`` (as ``kedro jupyter`` would)
with ``PDM_DATA_ROOT`` / ``PDM_MLFLOW_TRACKING_URI`` pointing there, so ``%load_ext kedro.ipython``
and ``catalog.load(...)`` read that run. Any cell error fails the test, and what a notebook prints is
compared with the run's own files. Notebooks are stored without outputs.
"""

from __future__ import annotations

import math
import re

import nbformat
import pandas as pd
import pytest
from nbclient import NotebookClient

from pdm_kedro.contract import SPLITS
from tests.conftest import PROJECT_ROOT, TEST_MACHINE

NOTEBOOKS_DIR = PROJECT_ROOT / "notebooks"
NOTEBOOKS = [
    "exploratory_analysis",
    "model_comparison",
    "feature_importance_analysis",
    "explain_a_failure",
]
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


def run_notebook(name: str, small_run, monkeypatch) -> str:
    """Execute a notebook on the shared run; all its text output (stdout and text/plain)."""
    for key in ("PDM_DATA_ROOT", "PDM_MLFLOW_TRACKING_URI", "KEDRO_DISABLE_TELEMETRY"):
        monkeypatch.setenv(key, small_run["env"][key])
    monkeypatch.setenv("PDM_NOTEBOOK_MACHINE", TEST_MACHINE)
    monkeypatch.delenv("MPLBACKEND", raising=False)  # the kernel's inline backend draws PNGs
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
    assert any("image/png" in o.get("data", {}) for o in outputs), "no figure drawn"
    texts = [o.get("text", "") for o in outputs if o.get("output_type") == "stream"]
    texts += [o.get("data", {}).get("text/plain", "") for o in outputs]
    return "\n".join(texts)


@pytest.mark.slow
def test_exploratory_analysis_describes_the_runs_machine(small_run, monkeypatch):
    text = run_notebook("exploratory_analysis", small_run, monkeypatch)
    raw = pd.concat(
        pd.read_parquet(small_run["data"] / "01_raw" / TEST_MACHINE / f"{split}.parquet")
        for split in SPLITS
    )
    assert f"{len(raw):,} rows, {raw['episode_id'].nunique()} episodes" in text


@pytest.mark.slow
def test_model_comparison_compares_the_runs_machines(small_run, monkeypatch):
    text = run_notebook("model_comparison", small_run, monkeypatch)
    for machine in small_run["machines"]:
        assert machine in text
    others = {"motor_abb_m3bp_002", "cooling_tower_bac_vti_018"}  # priority, not in the run
    assert not [machine for machine in others if machine in text]


@pytest.mark.slow
def test_feature_importance_analysis_reads_the_runs_importances(small_run, monkeypatch):
    text = run_notebook("feature_importance_analysis", small_run, monkeypatch)
    folder = small_run["data"] / "08_reporting" / TEST_MACHINE
    frames = {
        family: pd.read_csv(folder / family / "feature_importance.csv")
        for family in ("classification", "regression")
    }
    for family, frame in frames.items():
        assert f"{family}: {len(frame)} model inputs, importances cover them: True" in text
    merged = frames["classification"].merge(frames["regression"], on="feature")
    rho = merged["importance_x"].corr(merged["importance_y"], method="spearman")
    assert not math.isnan(rho)
    assert f"Spearman rank correlation over {len(merged)} features: {rho:.2f}" in text


@pytest.mark.slow
def test_explain_a_failure_explains_a_test_failure_of_the_run(small_run, monkeypatch, machine):
    text = run_notebook("explain_a_failure", small_run, monkeypatch)
    data = small_run["data"]
    features = pd.read_parquet(data / "04_feature" / TEST_MACHINE / "features_test.parquet")
    episode = re.search(r"Episode (\S+): explained row", text)
    assert episode, text[:2000]
    failing = features.groupby(features["episode_id"].astype(str))["failure_within_horizon"].max()
    assert failing[episode.group(1)] == 1  # a test episode that ends in a failure
    for family in ("classification", "regression"):
        assert f"{family}: edge and XGBoost agree on the top factors: True" in text
    hidden = pd.read_parquet(data / "01_raw" / TEST_MACHINE / "hidden_state_test.parquet")
    mine = hidden["episode_id"].astype(str) == episode.group(1)
    true_mode = hidden.loc[mine, "failure_mode"].iloc[0]
    diagnosed = re.search(r"diagnosed: (\S+), true mode: (\S+)", text)
    assert diagnosed and diagnosed.group(2) == true_mode
    modes = machine["failure_modes"]
    assert diagnosed.group(1) in modes
    assert f"recommended action: {modes[diagnosed.group(1)]['action']}" in text
