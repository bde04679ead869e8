"""Training jobs: bounded queue, one job per machine, a real small run that changes the served bundle."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from pdm_kedro.service.config import ServiceConfig
from pdm_kedro.service.errors import ServiceError
from pdm_kedro.service.jobs import JobManager, read_progress
from tests.conftest import TEST_MACHINE
from tests.docs.kedro_cli import stop_process_group

from .conftest import ADMIN_KEY, copy_root, start_server

JOB_TIMEOUT_S = 900


class FakeRegistry:
    def __init__(self) -> None:
        self.scans = 0

    def get(self, _machine_id):
        return None

    def scan(self):
        self.scans += 1
        return []


def wait_for(manager: JobManager, job_id: str, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = manager.status(job_id)
        if status["state"] in ("succeeded", "failed"):
            return status
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} did not finish: {manager.status(job_id)}")


def test_queue_is_bounded_and_one_job_per_machine(tmp_path, monkeypatch):
    config = ServiceConfig(training={"max_queue": 2, "timeout_seconds": 60, "log_tail_lines": 5})
    registry = FakeRegistry()
    manager = JobManager(tmp_path / "state", config, registry)
    script = "import time\nfor i in range(3):\n    print(f'Completed {i + 1} out of 3 tasks', flush=True)\n    time.sleep(0.4)"
    monkeypatch.setattr(manager, "command", lambda *_: [sys.executable, "-c", script])
    try:
        first = manager.submit("machine_a", {})
        with pytest.raises(ServiceError) as busy:
            manager.submit("machine_a", {})
        assert busy.value.status == 409 and first["job_id"] in busy.value.message
        manager.submit("machine_b", {})
        with pytest.raises(ServiceError) as full:
            manager.submit("machine_c", {})
        assert full.value.status == 429 and "limit is 2" in full.value.message
        assert full.value.headers["Retry-After"]
        done = wait_for(manager, first["job_id"])
        assert done["state"] == "succeeded", done
        assert done["progress"]["tasks_completed"] == 3 and done["progress"]["fraction"] == 1.0
        assert done["log_tail"][-1] == "Completed 3 out of 3 tasks"
        assert registry.scans >= 1  # the bundles are rescanned after a run
        again = manager.submit("machine_a", {})  # the machine is free again
        assert again["job_id"] != first["job_id"]
    finally:
        manager.stop()


def test_a_failing_run_is_reported_with_its_log(tmp_path, monkeypatch):
    manager = JobManager(tmp_path / "state", ServiceConfig(), FakeRegistry())
    script = "import sys\nprint('Running node: m.train_model: boom', flush=True)\nsys.exit(3)"
    monkeypatch.setattr(manager, "command", lambda *_: [sys.executable, "-c", script])
    try:
        done = wait_for(manager, manager.submit("machine_a", {})["job_id"])
    finally:
        manager.stop()
    assert done["state"] == "failed" and "exited 3" in done["error"]
    assert done["progress"]["stage"] == "train_model"


def test_progress_reads_kedro_log_lines(tmp_path):
    log = tmp_path / "job.log"
    log.write_text(
        "INFO Running node: motor_1.fit_sensor_baselines: fit(...)\n"
        "INFO Completed 7 out of 65 tasks\n"
    )
    progress, tail = read_progress(log, 1)
    assert progress["tasks_completed"] == 7 and progress["tasks_total"] == 65
    assert progress["current_node"] == "motor_1.fit_sensor_baselines"
    assert tail == ["INFO Completed 7 out of 65 tasks"]


def test_command_is_kedro_run_of_the_machine_with_the_services_env(tmp_path):
    config = ServiceConfig(env="small", conf_source=tmp_path)
    manager = JobManager(tmp_path / "state", config, FakeRegistry())
    try:
        cmd = manager.command(TEST_MACHINE, {"simulation.seed": 7})
    finally:
        manager.stop()
    assert Path(cmd[0]).name == "kedro"
    assert cmd[1:] == [
        "run", "--namespaces", TEST_MACHINE, "--env", "small",
        "--conf-source", str(tmp_path), "--params", "simulation.seed=7",
    ]  # fmt: skip


@pytest.mark.slow
def test_training_job_runs_to_completion_and_swaps_the_served_bundle(service_root, tmp_path):
    root = copy_root(service_root, tmp_path / "root")
    server = start_server(root, name="training")
    try:
        with server.client(ADMIN_KEY) as client:
            before = client.get("/v1/machines").json()["machines"][0]
            response = client.post(f"/v1/machines/{TEST_MACHINE}/training")
            assert response.status_code == 202, response.text
            job_id = response.json()["job_id"]
            busy = client.post(f"/v1/machines/{TEST_MACHINE}/training")
            assert busy.status_code == 409 and job_id in busy.json()["error"]["message"]
            deadline = time.monotonic() + JOB_TIMEOUT_S
            seen_running = False
            while time.monotonic() < deadline:
                response = client.get(f"/v1/jobs/{job_id}")
                if response.status_code == 429:  # the admin budget: wait as told
                    time.sleep(int(response.headers["Retry-After"]))
                    continue
                status = response.json()
                seen_running |= status["state"] == "running"
                if status["state"] in ("succeeded", "failed"):
                    break
                time.sleep(2)
            assert status["state"] == "succeeded", status["log_tail"]
            assert seen_running
            assert status["progress"]["tasks_completed"] == status["progress"]["tasks_total"] > 0
            assert status["log_tail"]
            assert status["command"][1:4] == ["run", "--namespaces", TEST_MACHINE]
            assert status["served_bundle_changed"] is True
            assert status["versions_before"]["bundle_version"] == before["bundle_version"]
            after = client.get("/v1/machines").json()["machines"][0]
            assert after["bundle_version"] == status["versions_after"]["bundle_version"]
            assert after["bundle_version"] != before["bundle_version"]
            assert after["trained_at"] > before["trained_at"]
            decisions = {row["family"]: row for row in status["promotion"] if "family" in row}
            assert set(decisions) == {"classification", "regression", "anomaly", "forecasting"}
            assert all(row["decision"] for row in decisions.values())
            performance = client.get(f"/v1/machines/{TEST_MACHINE}/performance").json()
            assert len(performance["families"]["classification"]["versions"]) == 2
    finally:
        stop_process_group(server.process)
