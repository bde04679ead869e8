"""The MLflow tracking server the fleet command starts: it stops whole, also when the command
fails after starting it."""

from __future__ import annotations

import psutil
import pytest
from click.testing import CliRunner

from pdm_kedro.commands import fleet as fleet_command
from pdm_kedro.distributed import engine, tracking_server
from tests.docs.kedro_cli import isolated_env, make_project_shim


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_stop_ends_the_server_and_its_launcher(tmp_path):
    """`mlflow server` (the launcher) and the HTTP server it started (gunicorn's master and
    worker) are all gone when stop() returns; a second stop() is a no-op."""
    server = tracking_server.start_tracking_server(tmp_path / "srv")
    processes = [server.process.pid] + [
        p.pid for p in psutil.Process(server.process.pid).children(recursive=True)
    ]
    assert len(processes) >= 2  # the launcher and the server it started
    server.stop()
    assert [pid for pid in processes if not _gone(pid)] == []
    assert server.process.returncode is not None
    server.stop()


def test_a_cluster_that_fails_to_start_does_not_leave_the_server_running(tmp_path, monkeypatch):
    """Any error while the cluster starts (not only an unreachable scheduler) stops the MLflow
    server the command started before it."""
    started: list[tracking_server.TrackingServer] = []
    real_start = tracking_server.start_tracking_server

    def recording_start(*args, **kwargs):
        server = real_start(*args, **kwargs)
        started.append(server)
        return server

    def failing_connect(*_args, **_kwargs):
        raise RuntimeError("Nanny failed to start.")

    monkeypatch.setattr(tracking_server, "start_tracking_server", recording_start)
    monkeypatch.setattr(engine, "connect", failing_connect)
    shim = make_project_shim(tmp_path)
    monkeypatch.chdir(shim)
    for name, value in isolated_env(tmp_path).items():
        monkeypatch.setenv(name, value)
    result = CliRunner().invoke(
        fleet_command.command, ["run", "--machines", "motor_siemens_1la7_001"]
    )
    assert isinstance(result.exception, RuntimeError)
    assert "Nanny failed" in str(result.exception)
    (server,) = started
    assert server.process.poll() is not None
    with pytest.raises(psutil.NoSuchProcess):
        psutil.Process(server.process.pid)
