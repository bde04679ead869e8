"""End-to-end `kedro run` in a subprocess on the small config, writing only to a temp folder."""

import json
import os
import subprocess
import sys

import pandas as pd
import pytest

from tests.conftest import PROJECT_ROOT, TEST_MACHINE

pytestmark = pytest.mark.slow
FOUNDATION = "data_generation,data_validation,feature_engineering"


def kedro(*args: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "kedro", *args],
        cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip


@pytest.fixture()
def run_env(isolated_project_env) -> dict:
    return dict(os.environ)


def project_data_snapshot() -> dict:
    """Every file under the project's data/ and mlflow.db with its modification time."""
    files = [*(PROJECT_ROOT / "data").rglob("*"), PROJECT_ROOT / "mlflow.db"]
    return {str(p): p.stat().st_mtime_ns for p in files if p.is_file()}


def test_kedro_run_one_machine_end_to_end(run_env, isolated_project_env):
    before = project_data_snapshot()
    result = kedro("run", "-e", "small", "--namespaces", TEST_MACHINE, env=run_env)
    assert result.returncode == 0, result.stderr[-3000:]
    data = isolated_project_env / "data"
    for split in ("train", "val", "test"):
        raw = pd.read_parquet(data / "01_raw" / TEST_MACHINE / f"{split}.parquet")
        features = pd.read_parquet(data / "04_feature" / TEST_MACHINE / f"features_{split}.parquet")
        assert len(features) == len(raw) > 0
    report = json.loads(
        (data / "08_reporting" / TEST_MACHINE / "validation_report.json").read_text()
    )
    assert report["rows_in"] == report["rows_valid"] + report["rows_quarantined"] == 4000
    assert (isolated_project_env / "mlflow.db").exists()
    assert project_data_snapshot() == before, "the run wrote into the project's own data/"


def test_parallel_runner_on_two_machines(run_env, isolated_project_env):
    machines = f"{TEST_MACHINE},pump_grundfos_cr3_004"
    result = kedro(
        "run", "-e", "small", "--pipelines", FOUNDATION, "--namespaces", machines,
        "--runner", "ParallelRunner", env=run_env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    for machine in machines.split(","):
        path = isolated_project_env / "data" / "04_feature" / machine / "features_test.parquet"
        assert path.exists()


def test_unknown_machine_namespace_fails_with_its_name(run_env):
    result = kedro("run", "--namespaces", "pump_does_not_exist_999", env=run_env)
    assert result.returncode != 0
    assert "pump_does_not_exist_999" in result.stdout + result.stderr


def test_bad_raw_file_stops_the_run_naming_machine_column_and_rows(run_env, isolated_project_env):
    """A corrupted raw split on disk (as if a user dropped in a bad file) fails validation clearly."""
    ok = kedro("run", "-e", "small", "--pipelines", "data_generation", "--namespaces",
               TEST_MACHINE, env=run_env)  # fmt: skip
    assert ok.returncode == 0, ok.stderr[-3000:]
    path = isolated_project_env / "data" / "01_raw" / TEST_MACHINE / "val.parquet"
    raw = pd.read_parquet(path).drop(columns=["bearing_temperature"])
    raw.to_parquet(path)
    result = kedro("run", "-e", "small", "--pipelines", "data_validation", "--namespaces",
                   TEST_MACHINE, env=run_env)  # fmt: skip
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "DataValidationError" in output
    assert TEST_MACHINE in output and "'bearing_temperature'" in output
