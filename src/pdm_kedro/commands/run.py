"""``pdm-kedro run ...``: the project's ``kedro run`` (same options)."""

from __future__ import annotations

from pathlib import Path

import click
from kedro.framework.cli.utils import find_run_command
from kedro.framework.project import configure_project

PACKAGE_NAME = Path(__file__).resolve().parents[1].name


def _kedro_run() -> click.Command:
    configure_project(PACKAGE_NAME)
    run = find_run_command(PACKAGE_NAME)
    run.name = "run"
    return run


command = _kedro_run()
