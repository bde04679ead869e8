"""`pdm-kedro fleet run` errors that need no cluster run: unreachable scheduler, unknown machine."""

from __future__ import annotations

import subprocess
import sys

from pdm_kedro.distributed.engine import error_line
from tests.docs.kedro_cli import isolated_env, make_project_shim


def fleet(*args: str, cwd, env) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pdm_kedro", "fleet", "run", *args],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip


def test_unreachable_scheduler_is_one_clear_error(tmp_path):
    shim = make_project_shim(tmp_path)
    result = fleet(
        "--machines", "motor_siemens_1la7_001", "--scheduler", "tcp://127.0.0.1:9",
        cwd=shim, env=isolated_env(tmp_path),
    )  # fmt: skip
    assert result.returncode == 1
    assert "Error: No Dask scheduler answers at tcp://127.0.0.1:9" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert not (tmp_path / "data").exists()  # nothing ran


def test_unknown_machine_is_named(tmp_path):
    shim = make_project_shim(tmp_path)
    result = fleet("--machines", "pump_nope_999", cwd=shim, env=isolated_env(tmp_path))
    assert result.returncode == 1
    assert "Unknown machine id 'pump_nope_999'" in result.stderr


def test_error_line_finds_the_error_in_kedro_output():
    output = "INFO Running node\n╭── Traceback ──╮\n│ x │\n╰───╯\nValueError: machine m1: bad\n"
    assert error_line(output) == "ValueError: machine m1: bad"
    assert error_line("E: x\nValidationError: 1 error\nfield_a\n  too small\nmore\nend") == (
        "ValidationError: 1 error / field_a / too small / more"
    )
    assert error_line("") == "no output"
