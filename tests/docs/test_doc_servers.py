"""The user guide's long-running commands start as written and answer on loopback.

``kedro mlflow ui --port 5000``, ``kedro viz run`` and ``kedro jupyter lab --no-browser`` each run
as written (``start_documented``) in a project shim with an isolated data root and MLflow store,
and are stopped at the end. What the docs leave to the environment comes from the environment:
``BROWSER=true`` (no browser window), and for Jupyter a config folder of the test's own
(``JUPYTER_CONFIG_DIR``: loopback, a free port, no token, ``allow_root`` when running as root).
"""

from __future__ import annotations

import json
import os
import re
import time
import urllib.request

import pytest

from tests.docs.documented import start_documented
from tests.docs.kedro_cli import (
    free_port,
    isolated_env,
    make_project_shim,
    port_is_free,
    stop_process_group,
    wait_for_http,
)

pytestmark = pytest.mark.slow

STARTUP_TIMEOUT_S = 180
MLFLOW_UI = "kedro mlflow ui --port 5000"
VIZ_RUN = "kedro viz run"
JUPYTER_LAB = "kedro jupyter lab --no-browser"
VIZ_URL = re.compile(r"http://127\.0\.0\.1:(\d+)/")
UNREACHABLE_PROXY = "http://127.0.0.1:9"  # discard port: every outside request is refused at once


def _get_json(url: str) -> dict:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(url, timeout=30) as response:
        return json.loads(response.read())


def test_mlflow_ui_serves_the_tracking_store_the_project_is_configured_with(tmp_path, small_run):
    if not port_is_free(5000):
        pytest.fail("port 5000 is taken on this machine: the documented `--port 5000` cannot bind")
    process = start_documented(MLFLOW_UI, cwd=small_run["shim"], env=small_run["env"])
    try:
        url = "http://127.0.0.1:5000/api/2.0/mlflow"
        assert (
            wait_for_http(process, f"{url}/experiments/search?max_results=5", STARTUP_TIMEOUT_S)
            == 200
        )
        experiments = _get_json(f"{url}/experiments/search?max_results=5")["experiments"]
        assert "pdm_kedro" in {e["name"] for e in experiments}
        models = _get_json(f"{url}/registered-models/search?max_results=50")["registered_models"]
        assert f"{small_run['machines'][0]}-classification" in {m["name"] for m in models}
    finally:
        stop_process_group(process)


def test_viz_run_serves_the_default_pipeline_offline(tmp_path, fleet_priority):
    env = isolated_env(tmp_path)
    env.update({"HTTPS_PROXY": UNREACHABLE_PROXY, "HTTP_PROXY": UNREACHABLE_PROXY})
    env.update({"NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"})
    process = start_documented(VIZ_RUN, cwd=make_project_shim(tmp_path), env=env)
    try:
        output, deadline = "", time.monotonic() + STARTUP_TIMEOUT_S
        os.set_blocking(process.stdout.fileno(), False)
        while not VIZ_URL.search(output) and time.monotonic() < deadline:
            assert process.poll() is None, f"kedro viz run exited:\n{output[-3000:]}"
            output += (process.stdout.read() or b"").decode(errors="replace")
            time.sleep(0.5)
        found = VIZ_URL.search(output)
        assert found, f"kedro viz run printed no URL:\n{output[-3000:]}"
        url = f"http://127.0.0.1:{found.group(1)}"  # 4141, or the next free port
        assert wait_for_http(process, f"{url}/api/main", 60) == 200
        graph = _get_json(f"{url}/api/main")
        top = {c["id"] for c in graph["modular_pipelines"]["__root__"]["children"]}
        assert set(fleet_priority) <= top
    finally:
        stop_process_group(process)


@pytest.mark.requires("jupyterlab")
def test_kedro_jupyter_lab_starts_with_the_project_kernel(tmp_path):
    port = free_port()
    jupyter_home = tmp_path / "jupyter"
    (jupyter_home / "config").mkdir(parents=True)
    (jupyter_home / "config" / "jupyter_server_config.json").write_text(
        json.dumps(
            {
                "ServerApp": {
                    "ip": "127.0.0.1",
                    "port": port,
                    "port_retries": 0,
                    "token": "",
                    "password": "",
                    "open_browser": False,
                    "allow_root": os.geteuid() == 0,  # CI containers run as root
                }
            }
        )
    )
    env = isolated_env(tmp_path)
    env.update(
        {  # kernel spec, runtime files and config go to tmp, not the user's home
            "JUPYTER_DATA_DIR": str(jupyter_home / "data"),
            "JUPYTER_RUNTIME_DIR": str(jupyter_home / "runtime"),
            "JUPYTER_CONFIG_DIR": str(jupyter_home / "config"),
        }
    )
    process = start_documented(JUPYTER_LAB, cwd=make_project_shim(tmp_path), env=env)
    try:
        assert wait_for_http(process, f"http://127.0.0.1:{port}/api", STARTUP_TIMEOUT_S) == 200
        assert wait_for_http(process, f"http://127.0.0.1:{port}/lab", 30) == 200
        specs = _get_json(f"http://127.0.0.1:{port}/api/kernelspecs")["kernelspecs"]
        assert "kedro_pdm_kedro" in specs
    finally:
        stop_process_group(process)
    assert (jupyter_home / "data" / "kernels" / "kedro_pdm_kedro" / "kernel.json").exists()
