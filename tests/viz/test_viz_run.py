"""``kedro viz run`` serves the project's graph offline (no network: its update check fails fast)."""

from __future__ import annotations

import json
import os
import shlex
import signal
import socket
import subprocess
import time
import urllib.request

import pytest

from tests.docs.kedro_cli import isolated_env, kedro_executable, make_project_shim

pytestmark = pytest.mark.slow

VIZ_RUN_COMMAND = "kedro viz run --no-browser --host 127.0.0.1 --port {port}"
STARTUP_TIMEOUT_S = 180  # ~20 s on an idle 2-core machine; CPU is shared
UNREACHABLE_PROXY = "http://127.0.0.1:9"  # discard port: every outside request is refused at once


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _fetch_json(url: str) -> dict | None:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=5) as response:
            return json.loads(response.read())
    except OSError:
        return None


@pytest.fixture()
def viz_server(tmp_path):
    """A running ``kedro viz run`` on a free loopback port, with the outside world cut off."""
    port = _free_port()
    env = isolated_env(tmp_path)
    env.update({"HTTPS_PROXY": UNREACHABLE_PROXY, "HTTP_PROXY": UNREACHABLE_PROXY})
    env.update({"NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"})
    args = shlex.split(VIZ_RUN_COMMAND.format(port=port))
    process = subprocess.Popen(
        [kedro_executable(), *args[1:]],
        cwd=make_project_shim(tmp_path),
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group: the server child goes down with it
    )
    try:
        yield process, f"http://127.0.0.1:{port}"
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def test_viz_run_serves_the_default_pipeline_offline(viz_server, fleet_priority):
    process, url = viz_server
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    graph = None
    while graph is None and time.monotonic() < deadline:
        assert process.poll() is None, process.stdout.read().decode(errors="replace")[-4000:]
        graph = _fetch_json(f"{url}/api/main")
        if graph is None:
            time.sleep(1)
    assert graph is not None, f"kedro viz run did not answer within {STARTUP_TIMEOUT_S} s"
    top = {c["id"] for c in graph["modular_pipelines"]["__root__"]["children"]}
    assert set(fleet_priority) <= top
