"""`pdm-kedro fleet run` on a real two-worker LocalCluster, logging to a real MLflow server.

The sequential reference is the session's shared ``small_run`` (tests/conftest.py: one
``kedro run`` of the small config for the same two machines, same seeds): each machine's
metrics from a Dask worker must equal its metrics from that run, value for value.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from pdm_kedro.distributed.tracking_server import start_tracking_server
from tests.conftest import TEST_MACHINE
from tests.docs.documented import run_documented
from tests.docs.kedro_cli import PROJECT_ROOT, isolated_env, make_project_shim

pytestmark = pytest.mark.slow
OTHER = "pump_grundfos_cr3_004"
FAMILIES = ("classification", "regression", "anomaly", "forecasting")
FLEET_RUN_COMMAND = f"pdm-kedro fleet run -e small --machines {TEST_MACHINE},{OTHER} --workers 2"  # docs/scale_out.md


def family_metrics(data: Path, machine: str) -> dict:
    return {
        family: json.loads((data / "08_reporting" / machine / family / "metrics.json").read_text())
        for family in FAMILIES
    }


def test_two_workers_match_the_sequential_run_and_log_to_the_server(tmp_path, small_run):
    assert set(small_run["machines"]) == {TEST_MACHINE, OTHER}
    dask_root = tmp_path / "dask"
    with start_tracking_server(tmp_path / "mlflow_server") as server:
        env = isolated_env(dask_root) | {"PDM_MLFLOW_TRACKING_URI": server.uri}
        result = run_documented(
            FLEET_RUN_COMMAND, cwd=make_project_shim(dask_root), env=env, timeout=900
        )
        from mlflow.tracking import MlflowClient

        client = MlflowClient(tracking_uri=server.uri)
        experiment = client.get_experiment_by_name("pdm_kedro")
        runs = client.search_runs([experiment.experiment_id])
    assert sorted(r.info.run_name for r in runs) == sorted([TEST_MACHINE, OTHER])
    assert all(r.info.status == "FINISHED" for r in runs)
    for run in runs:  # the parameters (one batch at the start) and the held metrics arrived
        assert run.data.params["splits"] and f"{run.info.run_name}.machine" in run.data.params
        assert f"{run.info.run_name}.classification.f1" in run.data.metrics
    assert "2 of 2 machines done" in result.stderr

    for machine in (TEST_MACHINE, OTHER):
        assert family_metrics(dask_root / "data", machine) == family_metrics(
            small_run["data"], machine
        ), machine
    fleet_csv = (dask_root / "data" / "08_reporting" / "fleet_metrics.csv").read_text()
    assert TEST_MACHINE in fleet_csv and OTHER in fleet_csv
    summary = json.loads(
        (dask_root / "data" / "08_reporting" / "fleet_run" / "summary.json").read_text()
    )
    assert {m["status"] for m in summary["machines"].values()} == {"done"}
    assert all(0 < m["cpu_s"] <= m["seconds"] * 1.5 for m in summary["machines"].values())
    # each machine's session wrote its own full log (the two ran at the same time)
    for machine, other in ((TEST_MACHINE, OTHER), (OTHER, TEST_MACHINE)):
        log = (dask_root / "data" / "logs" / f"kedro_run_{machine}.log").read_text()
        assert f"{machine}: data_generation done" in log
        assert f"{other}: data_generation done" not in log
    assert not (dask_root / "data" / "logs" / "kedro_run.log").exists()


def broken_conf_shim(root: Path) -> Path:
    """A project shim whose conf has an environment `broken`: the small config with one machine's
    sampling interval negative (the registry accepts it; its run fails validating the machine)."""
    shim = make_project_shim(root)
    (shim / "conf").unlink()
    (shim / "conf").mkdir()
    for child in ("base", "small"):
        (shim / "conf" / child).symlink_to(PROJECT_ROOT / "conf" / child, target_is_directory=True)
    broken = shim / "conf" / "broken"
    shutil.copytree(PROJECT_ROOT / "conf" / "small", broken)
    machine = yaml.safe_load(
        (PROJECT_ROOT / "conf/base/parameters/machines" / f"{OTHER}.yml").read_text()
    )
    machine[OTHER]["machine"]["sampling_interval_min"] = -5
    (broken / "parameters" / "machines").mkdir(parents=True)
    (broken / "parameters" / "machines" / f"{OTHER}.yml").write_text(yaml.safe_dump(machine))
    return shim


def test_a_failing_machine_is_reported_retried_and_the_other_finishes(tmp_path, small_run):
    """One warm worker runs both machines, the broken one first: the good machine's session
    comes after a failed session in the same process and must still give the sequential
    numbers (nothing of the failed session leaks into it)."""
    shim = broken_conf_shim(tmp_path)
    result = subprocess.run(
        [sys.executable, "-m", "pdm_kedro", "fleet", "run", "-e", "broken",
         "--machines", f"{OTHER},{TEST_MACHINE}", "--workers", "1", "--retries", "1"],
        cwd=shim, env=isolated_env(tmp_path), capture_output=True, text=True, timeout=900,
        check=False,
    )  # fmt: skip
    assert result.returncode == 1, result.stderr[-3000:]
    failed = [line for line in result.stderr.splitlines() if line.startswith("FAILED")]
    assert len(failed) == 1 and OTHER in failed[0] and "after 2 attempt(s)" in failed[0]
    log = tmp_path / "data" / "08_reporting" / "fleet_run" / f"{OTHER}.log"
    assert "sampling_interval_min" in log.read_text()  # the machine's own error, file and key
    summary = json.loads(
        (tmp_path / "data" / "08_reporting" / "fleet_run" / "summary.json").read_text()
    )
    assert summary["machines"][TEST_MACHINE]["status"] == "done"
    assert summary["machines"][OTHER]["status"] == "failed"
    assert summary["machines"][OTHER]["attempts"] == 2
    assert summary["isolation"] == "session"
    # the error itself, not a traceback
    assert summary["machines"][OTHER]["error"].startswith(f"{OTHER}: ConfigError:")
    assert "sampling_interval_min" in summary["machines"][OTHER]["error"]
    fleet_csv = (tmp_path / "data" / "08_reporting" / "fleet_metrics.csv").read_text()
    assert TEST_MACHINE in fleet_csv and OTHER not in fleet_csv
    # the machine that finished is untouched by its neighbour's failure: the sequential numbers
    assert family_metrics(tmp_path / "data", TEST_MACHINE) == family_metrics(
        small_run["data"], TEST_MACHINE
    )
    # the command started the server over tmp_path/mlflow.db: the experiment it created keeps
    # its artifacts beside that store, written by the worker, not uploaded through the server
    from mlflow.tracking import MlflowClient  # noqa: PLC0415

    store = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment = store.get_experiment_by_name("pdm_kedro")
    assert experiment.artifact_location == (tmp_path / "mlartifacts").resolve().as_uri()
    assert list((tmp_path / "mlartifacts").rglob("MLmodel"))  # the good machine's models
    assert "mlflow-artifacts" not in (tmp_path / "mlflow_server.log").read_text()
