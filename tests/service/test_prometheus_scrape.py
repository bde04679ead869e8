"""A real Prometheus (Debian package, loopback, free port, temporary storage, bounded time)
scrapes a running service; its HTTP API answers a ``histogram_quantile`` of the prediction
latency and the drift gauge the service exports from the machine's monitoring report."""

from __future__ import annotations

import json
import shutil
import subprocess
import time

import httpx
import numpy as np
import pandas as pd
import pytest

from pdm_kedro.core.drift import DriftReference
from tests.conftest import TEST_MACHINE
from tests.docs.kedro_cli import free_port, stop_process_group

pytestmark = [pytest.mark.slow, pytest.mark.requires("prometheus")]

DEADLINE_S = 60
P99 = (
    "histogram_quantile(0.99, sum by (le) (rate(pdm_http_request_duration_seconds_bucket"
    '{endpoint=~".*predict.*"}[30s])))'
)


def drift_report(machine_id: str) -> dict:
    """A monitoring report whose newest window flags a sensor (computed, not written by hand)."""
    rng = np.random.default_rng(0)
    reference = pd.DataFrame({"s": rng.normal(0, 1, 2000)})
    drift = DriftReference(reference, ["s"], 200, margin=1.25).check(
        pd.DataFrame({"s": rng.normal(3, 1, 200)})
    )
    assert drift["s"]["drifted"]
    return {
        "machine_id": machine_id,
        "champion": {"test": {"classification": {"f1": 0.7}, "regression": {"rmse": 30.0}}},
        "windows": [
            {
                "day": "2025-05-01",
                "drift": {"flagged": True, "drifted_sensors": ["s"], "sensors": drift},
                "performance": {"classification": {"f1": 0.5}, "regression": {"rmse": 40.0}},
            }
        ],
    }


def query(client: httpx.Client, expr: str) -> list:
    answer = client.get("/api/v1/query", params={"query": expr}).json()
    assert answer["status"] == "success", answer
    return answer["data"]["result"]


def test_prometheus_scrapes_latency_quantiles_and_the_drift_gauge(
    server, service_root, body, tmp_path
):
    report = service_root / "data" / "08_reporting" / TEST_MACHINE / "monitoring.json"
    report.parent.mkdir(parents=True, exist_ok=True)
    report.write_text(json.dumps(drift_report(TEST_MACHINE)))
    port = free_port()
    target = server.url.removeprefix("http://")
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        f"scrape_configs:\n  - job_name: pdm\n    static_configs: [{{targets: ['{target}']}}]\n"
    )
    log = (tmp_path / "prometheus.log").open("w")
    process = subprocess.Popen(
        [shutil.which("prometheus"), f"--config.file={config}",
         f"--storage.tsdb.path={tmp_path / 'tsdb'}", f"--web.listen-address=127.0.0.1:{port}"],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    try:
        prom = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10, trust_env=False)
        deadline = time.monotonic() + DEADLINE_S
        p99, drift = [], []
        with server.client() as client:
            while time.monotonic() < deadline and not (p99 and drift):
                for _ in range(5):
                    path = f"/v1/machines/{TEST_MACHINE}/predict/regression"
                    assert client.post(path, json=body).status_code == 200
                time.sleep(1.0)
                try:
                    p99 = [r for r in query(prom, P99) if r["value"][1] not in ("NaN", "+Inf")]
                    drift = query(prom, f'pdm_drift_flagged{{machine="{TEST_MACHINE}"}}')
                except httpx.HTTPError:
                    continue
        assert p99, (
            f"no latency quantile within {DEADLINE_S} s:\n{(tmp_path / 'prometheus.log').read_text()[-3000:]}"
        )
        assert 0 < float(p99[0]["value"][1]) < 10
        assert drift and float(drift[0]["value"][1]) == 1.0
        ratio = query(
            prom, f'pdm_performance_ratio{{machine="{TEST_MACHINE}",family="regression"}}'
        )
        assert float(ratio[0]["value"][1]) == pytest.approx(40 / 30)
    finally:
        stop_process_group(process)
        log.close()
        report.unlink()
