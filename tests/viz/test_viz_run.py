"""``kedro viz run`` serves the project's graph offline (no network: its update check fails fast)."""

from __future__ import annotations

import json
import shlex
import subprocess
import urllib.request

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

VIZ_RUN_COMMAND = "kedro viz run --no-browser --host 127.0.0.1 --port {port}"
STARTUP_TIMEOUT_S = 180  # ~20 s on an idle 2-core machine; CPU is shared
UNREACHABLE_PROXY = "http://127.0.0.1:9"  # discard port: every outside request is refused at once


@pytest.fixture()
def viz_server(tmp_path):
    """A running ``kedro viz run`` on a free loopback port, with the outside world cut off."""
    port = free_port()
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
        stop_process_group(process)


def test_viz_run_serves_the_default_pipeline_offline(viz_server, fleet_priority):
    process, url = viz_server
    assert wait_for_http(process, f"{url}/api/main", STARTUP_TIMEOUT_S) == 200
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(f"{url}/api/main", timeout=30) as response:
        graph = json.loads(response.read())
    top = {c["id"] for c in graph["modular_pipelines"]["__root__"]["children"]}
    assert set(fleet_priority) <= top
