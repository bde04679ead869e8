"""Run a documented shell command exactly as the docs write it.

Tests that exercise a command from a fenced ``bash`` block of README.md or docs/*.md call
``run_documented(command, ...)`` with the command string copied verbatim from the docs (no
changed arguments, no stand-in). It runs through ``bash -c`` in the given working directory
(a project shim or a temporary folder, never the project itself when the command writes files)
and records the command in ``RAN``, which the docs test reads to check coverage.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

RAN: set[str] = set()


def run_documented(
    command: str,
    *,
    cwd: Path,
    env: dict[str, str],
    timeout: float = 600,
    check: bool = True,
) -> subprocess.CompletedProcess:
    """Run ``command`` as written; with ``check``, fail with its output on a non-zero exit."""
    result = subprocess.run(
        ["bash", "-c", command],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    RAN.add(command)
    if check and result.returncode != 0:
        raise AssertionError(
            f"documented command failed ({result.returncode}): {command}\n"
            f"stdout:\n{result.stdout[-3000:]}\nstderr:\n{result.stderr[-3000:]}"
        )
    return result
