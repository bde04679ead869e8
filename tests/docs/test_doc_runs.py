"""The user guide's ``kedro run`` commands, run as written in a project shim (slow tier).

The shim is the project root for these runs: no ``PDM_DATA_ROOT`` / ``PDM_MLFLOW_TRACKING_URI``,
so the products land where the docs say, under the shim's ``data/`` and ``mlflow.db``.
"""

from __future__ import annotations

import json
import os
import shutil

import pandas as pd
import pytest

from pdm_kedro.fleet import load_project_parameters, priority_machines
from tests.conftest import PROJECT_ROOT, TEST_MACHINE
from tests.docs.documented import run_documented
from tests.docs.kedro_cli import make_project_shim, user_env

pytestmark = pytest.mark.slow

TELEMETRY_OFF = "export KEDRO_DISABLE_TELEMETRY=1"
DEFAULT_RUN = "kedro run"
FAMILY_RUN = f"kedro run -e small --pipelines classification --namespaces {TEST_MACHINE}"
OTHER_MACHINE = "cnc_haas_vf2_001"
OTHER_MACHINE_RUN = f"kedro run --pipelines {OTHER_MACHINE}"
FAMILIES = ("anomaly", "classification", "forecasting", "regression")
RUN_TIMEOUT_S = 1500


def family_metrics(data, machine: str, family: str) -> list[dict]:
    return json.loads((data / "08_reporting" / machine / family / "metrics.json").read_text())[
        "metrics"
    ]


def test_default_run_builds_the_priority_machines_into_data_and_mlflow_db(tmp_path):
    shim = make_project_shim(tmp_path)
    run_documented(
        TELEMETRY_OFF, DEFAULT_RUN, cwd=shim, env=user_env(tmp_path), timeout=RUN_TIMEOUT_S
    )
    priority = priority_machines(load_project_parameters("base", PROJECT_ROOT / "conf"))
    data = shim / "data"
    fleet = pd.read_csv(data / "08_reporting" / "fleet_metrics.csv")
    per_machine = fleet[fleet["machine_id"] != "fleet"]  # "fleet": the fleet-wide event rows
    assert sorted(per_machine["machine_id"].unique()) == sorted(priority)
    assert set(per_machine.groupby("machine_id")["family"].nunique()) == {len(FAMILIES)}
    events = fleet[fleet["machine_id"] == "fleet"]
    assert set(events["metric"]) >= {"warned_24h_fraction", "false_alarms_per_1000h"}
    for machine in priority:
        assert (data / "08_reporting" / machine / "model_card.md").is_file(), machine
        for family in FAMILIES:
            parity = json.loads(
                (data / "08_reporting" / machine / "edge" / f"{family}_parity.json").read_text()
            )
            assert parity["passed"] and not parity["mismatched_decisions"], (machine, family)
            assert (data / "06_models" / machine / "edge" / f"{family}.onnx").is_file()
    assert sorted(p.name for p in (data / "01_raw").iterdir()) == sorted(priority)
    assert (shim / "mlflow.db").is_file()  # "Everything lands under data/ and in mlflow.db"


def test_small_run_then_one_family_reproduce_the_shared_runs_numbers(
    tmp_path, one_machine_run, small_run
):
    """Same config and seed as the shared run's machine: the same numbers, run after run.

    The documented ``kedro run -e small --namespaces <machine>`` is the session's
    ``one_machine_run`` (tests/conftest.py); the family rerun goes to a copy of its project.
    """
    data = one_machine_run["data"]
    assert not (data / "08_reporting" / "fleet_metrics.csv").exists()  # a --namespaces run
    for family in FAMILIES:
        assert family_metrics(data, TEST_MACHINE, family) == family_metrics(
            small_run["data"], TEST_MACHINE, family
        ), family
    shim = tmp_path / "project"
    shutil.copytree(one_machine_run["shim"], shim, symlinks=True)
    env, data = one_machine_run["env"], shim / "data" / "small"
    card = data / "08_reporting" / TEST_MACHINE / "model_card.md"
    model = data / "07_model_output" / TEST_MACHINE / "classification" / "test_predictions.parquet"
    before = {path: path.stat().st_mtime_ns for path in (card, model)}
    run_documented(FAMILY_RUN, cwd=shim, env=env, timeout=RUN_TIMEOUT_S)
    assert model.stat().st_mtime_ns != before[model]  # classification ran again...
    assert card.stat().st_mtime_ns == before[card]  # ...and nothing else
    assert family_metrics(data, TEST_MACHINE, "classification") == family_metrics(
        small_run["data"], TEST_MACHINE, "classification"
    )


def test_non_priority_machine_runs_by_its_pipeline(tmp_path):
    shim = make_project_shim(tmp_path)
    run_documented(OTHER_MACHINE_RUN, cwd=shim, env=user_env(tmp_path), timeout=RUN_TIMEOUT_S)
    data = shim / "data"
    assert [p.name for p in (data / "01_raw").iterdir()] == [OTHER_MACHINE]
    for family in FAMILIES:
        assert family_metrics(data, OTHER_MACHINE, family), family
    card = (data / "08_reporting" / OTHER_MACHINE / "model_card.md").read_text()
    assert card.startswith(f"# Model card: {OTHER_MACHINE}")
    assert os.path.isfile(shim / "mlflow.db")
