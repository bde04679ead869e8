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
import subprocess
import sys
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
KEDRO_TIMEOUT_S = 240


def isolated_env(root: Path) -> dict[str, str]:
    """The environment of a CLI call whose data and MLflow store live under ``root``."""
    env = dict(os.environ)
    env.update(
        {
            "KEDRO_DISABLE_TELEMETRY": "1",
            "DO_NOT_TRACK": "1",
            "PDM_DATA_ROOT": str(root / "data"),
            "PDM_MLFLOW_TRACKING_URI": f"sqlite:///{root / 'mlflow.db'}",
        }
    )
    env.pop("KEDRO_ENV", None)
    return env


def make_project_shim(root: Path) -> Path:
    """A temporary Kedro project folder backed by the real config and the installed package."""
    shim = root / "project"
    shim.mkdir(parents=True, exist_ok=True)
    shutil.copy(PROJECT_ROOT / "pyproject.toml", shim / "pyproject.toml")
    (shim / "src").mkdir(exist_ok=True)
    if not (shim / "conf").exists():
        (shim / "conf").symlink_to(PROJECT_ROOT / "conf", target_is_directory=True)
    return shim


def kedro_executable() -> str:
    """The ``kedro`` script of the running interpreter's environment."""
    candidate = Path(sys.executable).with_name("kedro")
    return str(candidate) if candidate.exists() else (shutil.which("kedro") or "kedro")


def run_kedro(
    command: str, cwd: Path, env: dict[str, str], timeout: float = KEDRO_TIMEOUT_S
) -> subprocess.CompletedProcess:
    """Run ``command`` (a documented ``kedro ...`` line) and fail loudly with its output."""
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
