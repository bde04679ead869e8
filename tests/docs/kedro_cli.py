"""Run the project's documented ``kedro`` commands from tests without writing into the project.

``kedro viz build`` writes ``./build`` and every ``kedro run`` writes kedro-viz run events to
``./.viz``: both land in the working directory, i.e. the project. Tests therefore run the CLI in a
*project shim*: a temporary folder holding a copy of ``pyproject.toml``, a symlink to the real
``conf/`` and an empty ``src/`` (the package itself is installed editable). Kedro finds the same
project name, package, settings, pipelines and config; only the working directory differs.
``PDM_DATA_ROOT`` and ``PDM_MLFLOW_TRACKING_URI`` point at the temporary folder as well.
"""

from __future__ import annotations

import os
import shlex
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import yaml

PROJECT_ROOT = Path(__file__).resolve().parents[2]
KEDRO_TIMEOUT_S = 240


def isolated_env(root: Path, data: Path | None = None) -> dict[str, str]:
    """The environment of a CLI call whose data (default ``root/data``) and MLflow store live under ``root``."""
    env = dict(os.environ)
    env.update(
        {
            "KEDRO_DISABLE_TELEMETRY": "1",
            "DO_NOT_TRACK": "1",
            "MLFLOW_DISABLE_TELEMETRY": "true",
            "PDM_DATA_ROOT": str(data or root / "data"),
            "PDM_MLFLOW_TRACKING_URI": f"sqlite:///{root / 'mlflow.db'}",
            "BROWSER": "true",  # a command that opens a browser (kedro viz run) runs `true` instead
        }
    )
    env.pop("KEDRO_ENV", None)
    return env


def user_env(root: Path) -> dict[str, str]:
    """The environment of a user who set nothing: products go to the (shim) project's data/.

    ``isolated_env`` without ``PDM_DATA_ROOT``, ``PDM_MLFLOW_TRACKING_URI`` and
    ``KEDRO_DISABLE_TELEMETRY`` (the docs' own ``export`` line sets the last one where they say so).
    """
    env = isolated_env(root)
    for name in ("PDM_DATA_ROOT", "PDM_MLFLOW_TRACKING_URI", "KEDRO_DISABLE_TELEMETRY"):
        env.pop(name, None)
    return env


def make_project_shim(
    root: Path, extra_envs: dict[str, dict[str, dict]] | None = None, conf: Path | None = None
) -> Path:
    """A temporary Kedro project folder backed by the real config and the installed package.

    ``conf/`` is a symlink to the project's (or to ``conf``). With ``extra_envs``
    (``{env: {file name: content}}``) it is a folder instead, linking each of the project's
    environments and adding those test-only environments as YAML files.
    """
    shim = root / "project"
    shim.mkdir(parents=True, exist_ok=True)
    shutil.copy(PROJECT_ROOT / "pyproject.toml", shim / "pyproject.toml")
    (shim / "src").mkdir(exist_ok=True)
    if (shim / "conf").exists():
        return shim
    if not extra_envs:
        (shim / "conf").symlink_to(conf or PROJECT_ROOT / "conf", target_is_directory=True)
        return shim
    (shim / "conf").mkdir()
    for env_dir in sorted((PROJECT_ROOT / "conf").iterdir()):
        if env_dir.is_dir():
            (shim / "conf" / env_dir.name).symlink_to(env_dir, target_is_directory=True)
    for env_name, files in extra_envs.items():
        (shim / "conf" / env_name).mkdir()
        for name, content in files.items():
            (shim / "conf" / env_name / name).write_text(yaml.safe_dump(content, sort_keys=False))
    return shim


def kedro_executable() -> str:
    """The ``kedro`` script of the running interpreter's environment."""
    candidate = Path(sys.executable).with_name("kedro")
    return str(candidate) if candidate.exists() else (shutil.which("kedro") or "kedro")


def run_kedro(
    command: str, cwd: Path, env: dict[str, str], timeout: float = KEDRO_TIMEOUT_S
) -> subprocess.CompletedProcess:
    """Run ``command`` (a ``kedro ...`` line a test builds) and fail loudly with its output.

    A command copied from the docs goes through ``tests/docs/documented.py::run_documented``.
    """
    args = shlex.split(command)
    if args[0] != "kedro":
        raise ValueError(f"not a kedro command: {command}")
    result = subprocess.run(
        [kedro_executable(), *args[1:]],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if result.returncode != 0:
        raise AssertionError(
            f"`{command}` exited {result.returncode}\n--- stdout ---\n{result.stdout[-4000:]}"
            f"\n--- stderr ---\n{result.stderr[-4000:]}"
        )
    return result


def free_port(start: int = 41000, stop: int = 49000) -> int:
    """A TCP port free on 127.0.0.1 right now, below 49152 (kedro-viz refuses ephemeral ports)."""
    import socket  # noqa: PLC0415

    for port in range(start + os.getpid() % 1000, stop):  # parallel sessions start apart
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {start}..{stop}")


def wait_for_http(process: subprocess.Popen, url: str, timeout: float) -> int:
    """Poll ``url`` (no proxy) until it answers; the HTTP status, or fail with the server's output."""
    import time  # noqa: PLC0415
    import urllib.error  # noqa: PLC0415
    import urllib.request  # noqa: PLC0415

    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            output = process.stdout.read().decode(errors="replace") if process.stdout else ""
            raise AssertionError(f"server exited {process.returncode}:\n{output[-4000:]}")
        try:
            with opener.open(url, timeout=5) as response:
                return response.status
        except urllib.error.HTTPError as error:
            return error.code
        except OSError:
            time.sleep(1)
    raise AssertionError(f"{url} did not answer within {timeout:.0f} s")


def stop_process_group(process: subprocess.Popen) -> None:
    """Terminate a server started with ``start_new_session=True`` and its children."""
    import signal  # noqa: PLC0415

    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    except ProcessLookupError:
        pass


def port_is_free(port: int) -> bool:
    """Whether ``port`` on 127.0.0.1 can be bound (no server of this machine holds it)."""
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True
