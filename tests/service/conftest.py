"""The service's test bundle and servers.

``service_root``: the test machine's part of the session's shared ``small_run`` (tests/conftest.py:
one real ``kedro run`` of the small config), copied once per session into a temporary root
(``data/`` with that machine's products only, as ``kedro run -e small --namespaces
motor_siemens_1la7_001`` leaves them, and the run's ``mlflow.db``). ``server``: ``pdm-kedro serve`` started on a free
loopback port over that root (its conf source a temporary copy of ``conf/``), stopped at the end.
Tests that change bundles (training, docs) copy the root and start a server of their own.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest

from tests.conftest import TEST_MACHINE
from tests.docs.kedro_cli import (
    PROJECT_ROOT,
    free_port,
    isolated_env,
    make_project_shim,
    stop_process_group,
)

PREDICT_KEY = "test-predict-key-0001"
ADMIN_KEY = "test-admin-key-0002"
OTHER_PREDICT_KEY = "test-predict-key-0003"
API_KEYS = f"{PREDICT_KEY}:predict,{ADMIN_KEY}:admin,{OTHER_PREDICT_KEY}:predict"
READY_TIMEOUT_S = 180


@dataclass
class Server:
    """A started service: its base URL, process, data root and log file."""

    url: str
    process: subprocess.Popen
    root: Path
    log: Path

    def client(self, key: str | None = PREDICT_KEY, timeout: float = 60) -> httpx.Client:
        headers = {"X-API-Key": key} if key else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=timeout, trust_env=False)

    @property
    def bundle_dir(self) -> Path:
        return self.root / "data" / "06_models" / TEST_MACHINE / "edge"


def pdm_kedro_executable() -> str:
    candidate = Path(sys.executable).with_name("pdm-kedro")
    return str(candidate) if candidate.exists() else (shutil.which("pdm-kedro") or "pdm-kedro")


def conf_copy(root: Path, service_yml: dict | None = None, env: str = "small") -> Path:
    """A copy of the project's conf/ with ``service_yml`` as ``<env>/service.yml``."""
    target = root / "conf"
    if not target.exists():
        shutil.copytree(
            PROJECT_ROOT / "conf", target, ignore=shutil.ignore_patterns("credentials*")
        )
    if service_yml is not None:
        import yaml  # noqa: PLC0415

        (target / env).mkdir(exist_ok=True)
        (target / env / "service.yml").write_text(yaml.safe_dump({"service": service_yml}))
    return target


def service_env(root: Path, keys: str = API_KEYS) -> dict[str, str]:
    env = isolated_env(root)
    env["PDM_API_KEYS"] = keys
    env["MLFLOW_DISABLE_TELEMETRY"] = "true"
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    return env


def wait_ready(url: str, process: subprocess.Popen, log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    with httpx.Client(trust_env=False, timeout=5) as client:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise AssertionError(
                    f"server exited {process.returncode}:\n{log.read_text()[-4000:]}"
                )
            try:
                if client.get(f"{url}/health/ready").status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
    raise AssertionError(f"{url} not ready within {timeout:.0f} s:\n{log.read_text()[-4000:]}")


def start_server(
    root: Path,
    *,
    service_yml: dict | None = None,
    keys: str = API_KEYS,
    port: int | None = None,
    name: str = "server",
) -> Server:
    """``pdm-kedro serve`` over ``root`` (data, mlflow.db), in a project shim, on loopback."""
    port = port or free_port()
    conf = conf_copy(root / name, service_yml or {"reload_poll_seconds": 0.5})
    shim = make_project_shim(root / name)
    log = root / f"{name}.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [pdm_kedro_executable(), "serve", "--host", "127.0.0.1", "--port", str(port),
             "--env", "small", "--conf-source", str(conf)],
            cwd=shim,
            env=service_env(root, keys),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, process, log, READY_TIMEOUT_S)
    except BaseException:
        stop_process_group(process)
        raise
    return Server(url=url, process=process, root=root, log=log)


def copy_root(source: Path, target: Path) -> Path:
    """A private copy of a data root and its MLflow store (for tests that retrain or rewrite)."""
    target.mkdir(parents=True, exist_ok=True)
    shutil.copytree(source / "data", target / "data")
    shutil.copy2(source / "mlflow.db", target / "mlflow.db")
    return target


# what the two-machine shared run writes beyond a `--namespaces <machine>` run: the fleet rows
FLEET_LEVEL_FILES = ("08_reporting/fleet_metrics.csv",)


def one_machine_copy(run: dict, machine: str, target: Path) -> Path:
    """``target`` with ``data/`` and ``mlflow.db`` of ``run`` (a ``small_run``), one machine kept.

    Every per-machine folder of the other machines and the fleet-level files are left out, so
    the service sees the machine as after ``kedro run -e small --namespaces <machine>``.
    """
    others = set(run["machines"]) - {machine}
    source = run["data"]

    def ignore(folder: str, names: list[str]) -> set[str]:
        relative = Path(folder).relative_to(source)
        return {
            name
            for name in names
            if name in others or (relative / name).as_posix() in FLEET_LEVEL_FILES
        }

    target.mkdir(parents=True, exist_ok=True)
    shutil.copytree(source, target / "data", ignore=ignore)
    shutil.copy2(Path(run["mlflow_uri"].removeprefix("sqlite:///")), target / "mlflow.db")
    return target


@pytest.fixture(scope="session")
def service_root(tmp_path_factory, small_run) -> Path:
    """A temporary root with the small run's bundle of the test machine and its MLflow store."""
    root = one_machine_copy(small_run, TEST_MACHINE, tmp_path_factory.mktemp("service_root"))
    assert (root / "data" / "06_models" / TEST_MACHINE / "edge" / "manifest.json").is_file()
    return root


@pytest.fixture(scope="session")
def server(service_root) -> Server:
    started = start_server(service_root)
    yield started
    stop_process_group(started.process)


@pytest.fixture(scope="session")
def manifest(service_root) -> dict:
    path = service_root / "data" / "06_models" / TEST_MACHINE / "edge" / "manifest.json"
    return json.loads(path.read_text())


@pytest.fixture(scope="session")
def test_episode(service_root) -> pd.DataFrame:
    """The longest episode of the test split, in time order."""
    raw = pd.read_parquet(service_root / "data" / "01_raw" / TEST_MACHINE / "test.parquet")
    episode = raw["episode_id"].value_counts().idxmax()
    rows = raw[raw["episode_id"] == episode].sort_values("timestamp", kind="stable")
    return rows.reset_index(drop=True)


def json_readings(rows: pd.DataFrame, sensors: list[str]) -> dict[str, list]:
    """The request's ``readings``: ISO timestamps, regime names, numbers (null when missing)."""
    out: dict[str, list] = {
        "timestamp": [pd.Timestamp(t).isoformat() for t in rows["timestamp"]],
        "regime": rows["regime"].astype(str).tolist(),
    }
    for sensor in sensors:
        out[sensor] = [None if pd.isna(v) else float(v) for v in rows[sensor]]
    return out


def array_readings(rows: pd.DataFrame, sensors: list[str]) -> dict[str, np.ndarray]:
    """The same readings as the edge runtime's arrays."""
    out = {
        "timestamp": rows["timestamp"].to_numpy(dtype="datetime64[s]"),
        "regime": rows["regime"].astype(str).to_numpy(),
    }
    out |= {s: rows[s].to_numpy(dtype=np.float64) for s in sensors}
    return out


@pytest.fixture(scope="session")
def sensors(manifest) -> list[str]:
    return [s["name"] for s in manifest["sensors"]]


@pytest.fixture(scope="session")
def recent(test_episode, manifest) -> pd.DataFrame:
    """Exactly the history the machine needs, ending somewhere inside the episode."""
    need = int(manifest["inputs"]["min_history_rows"])
    end = min(len(test_episode), need + 25)
    return test_episode.iloc[end - need : end].reset_index(drop=True)


@pytest.fixture(scope="session")
def body(recent, sensors) -> dict:
    return {"readings": json_readings(recent, sensors)}


os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
