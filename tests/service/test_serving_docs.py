"""docs/serving.md: the start command and every curl example run as written, against the service.

The documented start command runs in a project shim (cwd) over a private copy of the session's
data root, on the documented port 8765; every other command runs through ``run_documented``
with the verbatim string from the docs.
"""

from __future__ import annotations

import json

import pandas as pd
import pytest

from tests.conftest import TEST_MACHINE
from tests.docs.doc_commands import blocks_in
from tests.docs.documented import run_documented, start_documented
from tests.docs.kedro_cli import (
    PROJECT_ROOT,
    isolated_env,
    make_project_shim,
    port_is_free,
    stop_process_group,
)

from .conftest import copy_root, wait_ready

pytestmark = pytest.mark.slow

SERVE_COMMAND = "PDM_API_KEYS=demo-predict-key:predict,demo-admin-key:admin pdm-kedro serve --host 127.0.0.1 --port 8765"
URL = "http://127.0.0.1:8765"
LIVE = "curl -s http://127.0.0.1:8765/health/live"
READY = "curl -s http://127.0.0.1:8765/health/ready"
MACHINES = 'curl -s -H "X-API-Key: demo-predict-key" http://127.0.0.1:8765/v1/machines'
BODY = "python -m pdm_kedro.service body --readings recent.csv > recent.json"
PREDICT = (
    'curl -s -H "X-API-Key: demo-predict-key" -H "Content-Type: application/json" '
    "--data-binary @recent.json "
    "http://127.0.0.1:8765/v1/machines/motor_siemens_1la7_001/predict"
)
PREDICT_ONE = f"{PREDICT}/classification"
PREDICT_EXPLAIN = (
    'curl -s -H "X-API-Key: demo-predict-key" -H "Content-Type: application/json" '
    "--data-binary @recent.json "
    '"http://127.0.0.1:8765/v1/machines/motor_siemens_1la7_001/predict?explain=3"'
)
PERFORMANCE = (
    'curl -s -H "X-API-Key: demo-predict-key" '
    "http://127.0.0.1:8765/v1/machines/motor_siemens_1la7_001/performance"
)
TRAIN = (
    'curl -s -X POST -H "X-API-Key: demo-admin-key" '
    "http://127.0.0.1:8765/v1/machines/motor_siemens_1la7_001/training"
)
JOB = 'curl -s -H "X-API-Key: demo-admin-key" http://127.0.0.1:8765/v1/jobs/$JOB_ID'
METRICS = "curl -s http://127.0.0.1:8765/metrics"
BENCH = "python benchmarks/bench_service.py --data-root /tmp/pdm_service_bench"  # not run (docs)
DOCUMENTED = [
    SERVE_COMMAND, LIVE, READY, MACHINES, BODY, PREDICT, PREDICT_ONE, PREDICT_EXPLAIN,
    PERFORMANCE, TRAIN, JOB, METRICS, BENCH,
]  # fmt: skip


def test_the_constants_are_the_documented_commands():
    documented = [
        cmd for block in blocks_in(PROJECT_ROOT / "docs" / "serving.md") for cmd in block.commands
    ]
    assert sorted(DOCUMENTED) == sorted(documented)


def test_documented_commands_against_a_started_service(service_root, tmp_path, recent, sensors):
    if not port_is_free(8765):
        pytest.fail("port 8765 (the documented port) is in use on this machine")
    root = copy_root(service_root, tmp_path / "root")
    shim = make_project_shim(tmp_path / "docs")
    env = isolated_env(root)
    env.pop("PDM_API_KEYS", None)
    rows = recent.copy()
    rows["timestamp"] = [pd.Timestamp(t).isoformat() for t in rows["timestamp"]]
    rows[["timestamp", "regime", *sensors]].to_csv(shim / "recent.csv", index=False)
    log = tmp_path / "serve.log"
    with log.open("w") as out:
        process = start_documented(SERVE_COMMAND, cwd=shim, env=env, stdout=out)
    try:
        wait_ready(URL, process, log, 180)

        assert (
            json.loads(run_documented(LIVE, cwd=shim, env=env, timeout=120).stdout)["status"]
            == "ok"
        )
        assert (
            json.loads(run_documented(READY, cwd=shim, env=env, timeout=120).stdout)["models"] == 4
        )
        machines = json.loads(run_documented(MACHINES, cwd=shim, env=env, timeout=120).stdout)[
            "machines"
        ]
        assert [m["machine_id"] for m in machines] == [TEST_MACHINE]
        run_documented(BODY, cwd=shim, env=env, timeout=120)
        body = json.loads((shim / "recent.json").read_text())
        assert len(body["readings"]["timestamp"]) == len(recent)
        answer = json.loads(run_documented(PREDICT, cwd=shim, env=env, timeout=120).stdout)
        assert {"failure", "rul_hours", "anomaly", "forecast"} <= set(answer)
        assert 0.0 <= answer["failure"]["probability"] <= 1.0
        one = json.loads(run_documented(PREDICT_ONE, cwd=shim, env=env, timeout=120).stdout)
        assert one["failure"] == answer["failure"] and one["rul_hours"] is None
        why = json.loads(run_documented(PREDICT_EXPLAIN, cwd=shim, env=env, timeout=120).stdout)
        assert why["failure"] == answer["failure"] and answer.get("explanation") is None
        assert len(why["explanation"]["failure"]["top_factors"]) == 3
        assert why["explanation"]["diagnosis"]["modes"][0]["action"]
        performance = json.loads(run_documented(PERFORMANCE, cwd=shim, env=env, timeout=120).stdout)
        assert set(performance["families"]) == set(machines[0]["families"])
        accepted = json.loads(run_documented(TRAIN, cwd=shim, env=env, timeout=120).stdout)
        assert accepted["state"] == "queued", accepted
        job = json.loads(
            run_documented(
                JOB, cwd=shim, env={**env, "JOB_ID": accepted["job_id"]}, timeout=120
            ).stdout
        )
        assert job["job_id"] == accepted["job_id"]
        assert job["state"] in ("queued", "running", "succeeded")
        metrics = run_documented(METRICS, cwd=shim, env=env, timeout=120).stdout
        assert "pdm_http_request_duration_seconds_bucket" in metrics
    finally:
        stop_process_group(process)  # the service stops its training job on shutdown
