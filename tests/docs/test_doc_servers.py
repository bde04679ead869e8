"""The user guide's long-running commands start and answer on loopback: MLflow UI, JupyterLab.

(``kedro viz run`` is started by ``tests/viz/test_viz_run.py``.) Each runs in a project shim with
an isolated data root and MLflow store, on a free port, and is stopped at the end.
"""

from __future__ import annotations

import importlib.util
import os
import shlex
import subprocess

import pytest

from tests.docs.kedro_cli import (
    free_port,
    isolated_env,
    kedro_executable,
    make_project_shim,
    stop_process_group,
    wait_for_http,
)

pytestmark = pytest.mark.slow

STARTUP_TIMEOUT_S = 150
MLFLOW_UI_COMMAND = "kedro mlflow ui --port 5000"
JUPYTER_LAB_COMMAND = "kedro jupyter lab --no-browser"


def _start(command: str, tmp_path, extra_env: dict | None = None) -> subprocess.Popen:
    env = isolated_env(tmp_path)
    env.update(extra_env or {})
    args = shlex.split(command)
    return subprocess.Popen(
        [kedro_executable(), *args[1:]],
        cwd=make_project_shim(tmp_path),
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def test_mlflow_ui_serves_the_tracking_store(tmp_path):
    port = free_port()
    command = MLFLOW_UI_COMMAND.replace("--port 5000", f"--port {port}")
    process = _start(command, tmp_path)
    try:
        status = wait_for_http(
            process,
            f"http://127.0.0.1:{port}/api/2.0/mlflow/experiments/search?max_results=5",
            STARTUP_TIMEOUT_S,
        )
        assert status == 200
    finally:
        stop_process_group(process)
    assert (tmp_path / "mlflow.db").exists()  # the UI used the isolated store, not the project's


@pytest.mark.skipif(
    importlib.util.find_spec("jupyterlab") is None,
    reason="jupyterlab is not installed: `pip install -e '.[dev]'` (or '.[jupyter]')",
)
def test_kedro_jupyter_lab_starts_with_the_project_kernel(tmp_path):
    port = free_port()
    command = (
        f"{JUPYTER_LAB_COMMAND} --port {port} --ServerApp.ip=127.0.0.1 "
        "--ServerApp.token= --ServerApp.password= --ServerApp.open_browser=False"
    )
    if os.geteuid() == 0:  # CI containers run as root, which Jupyter refuses without this
        command += " --allow-root"
    jupyter_home = tmp_path / "jupyter"
    process = _start(
        command,
        tmp_path,
        # kernel spec, runtime files and config go to tmp, not the user's home
        {
            "JUPYTER_DATA_DIR": str(jupyter_home / "data"),
            "JUPYTER_RUNTIME_DIR": str(jupyter_home / "runtime"),
            "JUPYTER_CONFIG_DIR": str(jupyter_home / "config"),
        },
    )
    try:
        assert wait_for_http(process, f"http://127.0.0.1:{port}/api", STARTUP_TIMEOUT_S) == 200
        assert wait_for_http(process, f"http://127.0.0.1:{port}/lab", 30) == 200
    finally:
        stop_process_group(process)
    assert (jupyter_home / "data" / "kernels" / "kedro_pdm_kedro" / "kernel.json").exists()
