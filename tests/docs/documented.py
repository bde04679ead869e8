"""Run a documented shell command exactly as the docs write it.

Tests that exercise a command from a fenced ``bash`` block of README.md or docs/*.md call
``run_documented(command, ...)`` with the command string copied verbatim from the docs (no
changed arguments, no stand-in), as a string literal or a module-level constant, so that
``tests/docs/coverage.py`` finds it by reading the test files. Several commands of one block (or
of consecutive blocks a reader types in one shell, e.g. an ``export`` and the ``kedro run`` after
it) go in one call: ``run_documented(EXPORT, RUN, ...)`` runs them as one bash script, in order.
Long-running servers start with ``start_documented`` (stop them with
``tests/docs/kedro_cli.py::stop_process_group``).

Commands run through ``bash`` in the given working directory (a project shim or a temporary
folder, never the project itself when the command writes files) and are recorded in ``RAN``; at
the end of a whole-suite session ``tests/conftest.py`` checks that every call found in the test
files really ran.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import IO

from tests.session_share import record_ran

RAN: set[str] = set()
_COMMENT = re.compile(r"(^|\s)#.*$")


def normalise(command: str) -> str:
    """One command as the docs scan sees it: continuations joined, comment dropped, spaces collapsed."""
    joined = re.sub(r"\\\n\s*", " ", command)
    return " ".join(_COMMENT.sub("", joined).split())


def _script(commands: tuple[str, ...]) -> str:
    if not commands:
        raise ValueError("run_documented needs at least one command")
    return "set -e\n" + "\n".join(commands) + "\n"


def run_documented(
    *commands: str,
    cwd: Path,
    env: dict[str, str],
    timeout: float = 600,
    check: bool = True,
) -> subprocess.CompletedProcess:
    """Run ``commands`` as written, in one bash; with ``check``, fail with the output on an error."""
    result = subprocess.run(
        ["bash", "-c", _script(commands)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    ran = [normalise(command) for command in commands]
    RAN.update(ran)
    record_ran(ran)  # for the session-end check of a run in several workers (pytest-xdist)
    if check and result.returncode != 0:
        raise AssertionError(
            f"documented command failed ({result.returncode}): {' && '.join(commands)}\n"
            f"stdout:\n{result.stdout[-3000:]}\nstderr:\n{result.stderr[-3000:]}"
        )
    return result


def start_documented(
    command: str, *, cwd: Path, env: dict[str, str], stdout: IO[str] | None = None
) -> subprocess.Popen:
    """Start a long-running documented command (a server) as written, in its own process group.

    Its output (stdout and stderr together) goes to ``stdout`` (an open file) when given, else it
    is readable from ``process.stdout``. Stop it with ``stop_process_group``.
    """
    process = subprocess.Popen(
        ["bash", "-c", command],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE if stdout is None else stdout,
        stderr=subprocess.STDOUT,
        text=stdout is not None,
        start_new_session=True,
    )
    RAN.add(normalise(command))
    record_ran([normalise(command)])
    return process
