"""A small `kedro run` as a user sees it: quiet console, summary table, run log, sample readings.

The run is the session's ``one_machine_run`` (tests/conftest.py: the documented
``kedro run -e small --namespaces <machine>`` in a project shim, as a user who set nothing runs
it, ``COLUMNS=120``); the documented sample-readings commands are run as written
(tests/docs/documented.py) in a private copy of the shared ``small_run`` (``small_run_copy``),
from its shim, whose ``data/`` is that run's data root.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess

import pytest

from tests.conftest import TEST_MACHINE
from tests.docs.documented import run_documented
from tests.docs.kedro_cli import (
    PROJECT_ROOT,
    isolated_env,
    kedro_executable,
    make_project_shim,
)

pytestmark = pytest.mark.slow

SAMPLE = "pdm-kedro sample-readings --out samples"
PREDICT = (
    f"python -m pdm_kedro.edge predict --bundle data/06_models --machine {TEST_MACHINE} "
    f"--readings samples/{TEST_MACHINE}_last48h.csv"
)
MAX_CONSOLE_LINES = 200  # was ~2,000 for this run before the quiet logging config


def test_console_is_quiet_and_ends_with_the_summary(one_machine_run):
    console, data = one_machine_run["console"], one_machine_run["data"]
    lines = console.splitlines()
    assert len(lines) < MAX_CONSOLE_LINES, console[-3000:]
    assert "Traceback" not in console
    for noise in ("UserWarning", "CloudPickle", "register_new_resolver", "Loading data from"):
        assert noise not in console, noise
    assert "Run summary (1 machines" in console
    assert re.search(r"feature_engineering done \(\d+/\d+ stages\)", console)  # plain progress
    for where in ("model cards", "edge bundles", "MLflow UI", "full log"):
        assert where in console
    assert f"mlflow ui --backend-store-uri sqlite:///{data / 'mlflow.db'}" in console


def test_summary_markdown_has_every_family_beside_its_baseline(one_machine_run):
    data = one_machine_run["data"]
    text = (data / "08_reporting" / "run_summary.md").read_text()
    for family in ("classification", "regression", "anomaly", "forecasting"):
        row = next(
            line for line in text.splitlines() if line.startswith(f"| {TEST_MACHINE} | {family} |")
        )
        verdict = row.split("|")[7].strip()
        assert verdict in {"yes", "no", "tie"}, row
    metrics = json.loads(
        (data / "08_reporting" / TEST_MACHINE / "regression" / "metrics.json").read_text()
    )
    rmse = next(r for r in metrics["metrics"] if r["metric"] == "rmse")
    assert f"| {rmse['value']:.4g} | {rmse['baseline']:.4g} (" in text  # the report's own figures


def test_full_log_goes_to_the_data_root_not_the_project(one_machine_run):
    shim, data = one_machine_run["shim"], one_machine_run["data"]
    log = (data / "logs" / "kedro_run.log").read_text()
    assert "Loading data from" in log and "py.warnings" in log  # what the console leaves out
    elsewhere = [path for path in shim.rglob("*.log") if data not in path.parents]
    assert not elsewhere and not (PROJECT_ROOT / "data" / "logs").exists()


def test_machine_is_named_on_every_project_line(one_machine_run):
    log = (one_machine_run["data"] / "logs" / "kedro_run.log").read_text()
    project = [line for line in log.splitlines() if " pdm_kedro.pipelines." in line]
    assert project and all(TEST_MACHINE in line for line in project), project[:5]


def test_sample_readings_round_trip_through_the_edge_cli(small_run_copy):
    root, env = small_run_copy["shim"], small_run_copy["env"]
    written = run_documented(SAMPLE, cwd=root, env=env)
    csv_path = root / "samples" / f"{TEST_MACHINE}_last48h.csv"
    assert f"samples/{TEST_MACHINE}_last48h.csv" in written.stdout and csv_path.is_file()
    answer = json.loads(run_documented(PREDICT, cwd=root, env=env).stdout)
    assert answer["machine_id"] == TEST_MACHINE
    assert answer["rows"] == len(csv_path.read_text().splitlines()) - 1
    assert 0.0 <= answer["failure"]["probability"] <= 1.0


def _kedro_failing(arguments: str, cwd, env) -> subprocess.CompletedProcess:  # noqa: ANN001
    """A mistyped ``kedro`` command (not a documented one): its result, whatever the exit code."""
    return subprocess.run(
        [kedro_executable(), *shlex.split(arguments)],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip


def test_unknown_namespace_and_pipeline_give_one_line_with_the_valid_names(tmp_path):
    shim, env = make_project_shim(tmp_path), isolated_env(tmp_path)
    bad_ns = _kedro_failing("run -e small --namespaces motor_siemens_1la7_01", shim, env)
    assert bad_ns.returncode == 2, bad_ns.stderr[-2000:]
    assert "Traceback" not in bad_ns.stdout + bad_ns.stderr
    error = [line for line in bad_ns.stderr.splitlines() if line.startswith("Error:")]
    assert len(error) == 1 and "Did you mean 'motor_siemens_1la7_001'?" in error[0]
    bad_pl = _kedro_failing("run -e small --pipelines regresion", shim, env)
    assert bad_pl.returncode == 2
    assert "Unknown pipeline 'regresion'. Did you mean 'regression'?" in bad_pl.stderr
    assert "Traceback" not in bad_pl.stdout + bad_pl.stderr


def test_override_that_cannot_work_says_the_smallest_value_that_does(tmp_path):
    shim, env = make_project_shim(tmp_path), isolated_env(tmp_path)
    command = (  # the small config's short lives: 1,000 rows are two episodes on this machine
        f"kedro run -e small --namespaces {TEST_MACHINE} --params simulation.rows_per_machine=1000"
    )
    result = run_documented(command, cwd=shim, env=env, check=False)
    assert result.returncode == 2 and "Traceback" not in result.stdout + result.stderr
    match = re.search(r"the smallest value that works for it is (\d+)", result.stderr)
    assert match, result.stderr[-2000:]
    smallest = int(match.group(1))
    fixed = f"kedro run -e small --pipelines data_generation --namespaces {TEST_MACHINE} --params simulation.rows_per_machine={smallest}"
    assert run_documented(fixed, cwd=shim, env=env).returncode == 0


def test_missing_data_folder_is_one_line(tmp_path):
    shim = make_project_shim(tmp_path)
    env = isolated_env(tmp_path)
    command = f"kedro run -e small --namespaces {TEST_MACHINE} --pipelines feature_engineering"
    result = run_documented(command, cwd=shim, env=env, check=False)
    assert result.returncode == 2 and "Traceback" not in result.stdout + result.stderr
    assert "is missing. Run the stage that writes it first" in result.stderr


def test_an_environment_writes_to_its_own_data_root_and_store(tmp_path):
    """Without PDM_DATA_ROOT / PDM_MLFLOW_TRACKING_URI, `-e small` uses data/small/ of the project."""
    shim = make_project_shim(tmp_path)
    env = isolated_env(tmp_path)
    for name in ("PDM_DATA_ROOT", "PDM_MLFLOW_TRACKING_URI"):
        env.pop(name)
    command = f"kedro run -e small --pipelines data_generation --namespaces {TEST_MACHINE}"
    run_documented(command, cwd=shim, env=env)
    small = shim / "data" / "small"
    assert (small / "01_raw" / TEST_MACHINE / "test.parquet").is_file()
    assert (small / "mlflow.db").is_file() and (small / "logs" / "kedro_run.log").is_file()
    assert not (shim / "mlflow.db").exists() and not (shim / "data" / "01_raw").exists()
