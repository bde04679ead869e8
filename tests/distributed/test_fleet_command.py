"""`pdm-kedro fleet run` without a cluster run: unreachable scheduler, unknown machine, submission order."""

from __future__ import annotations

import json
import subprocess
import sys

from pdm_kedro.distributed.engine import error_line, longest_first
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


def test_machines_go_longest_first_by_the_previous_runs_seconds(tmp_path):
    machines = ["a", "b", "c", "d", "new"]
    summary = tmp_path / "summary.json"
    assert longest_first(machines, summary) == (machines, longest_first(machines, None)[1])
    assert longest_first(machines, None)[0] == machines

    summary.write_text(json.dumps({"machines": {
        "a": {"status": "done", "seconds": 20.0},
        "b": {"status": "done", "seconds": 31.5},
        "c": {"status": "failed", "seconds": None},  # not timed: goes first, like a new one
        "d": {"status": "done", "seconds": 24.0},
        "gone": {"status": "done", "seconds": 99.0},  # not asked for this time
    }}))  # fmt: skip
    order, how = longest_first(machines, summary)
    assert order == ["c", "new", "b", "d", "a"]
    assert "longest first" in how and "3 of 5 timed" in how

    summary.write_text("{not json")
    assert longest_first(machines, summary)[0] == machines
