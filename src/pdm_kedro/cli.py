"""Project CLI: Kedro's own ``kedro run``, with one clear line instead of a traceback for the
mistakes a user makes (Kedro picks ``run`` up from a project's ``cli.py``; so does ``pdm-kedro run``
through ``kedro.framework.cli.utils.find_run_command``).

Same options and behaviour as ``kedro run``. What changes is only how a *user* error ends: an
unknown namespace, pipeline or machine (with the valid names), a parameter override that cannot
work (with the smallest value that does), a missing data folder or file, or a data file the
project cannot read. Each prints ``Error: ...`` on stderr and exits with code 2. Any other error
is a bug and keeps its full traceback. ``PDM_TRACEBACK=1`` shows the traceback for user errors too.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from typing import Any

import click
from kedro.framework.cli.project import run as kedro_run

from pdm_kedro.console.errors import explain

TRACEBACK_ENV = "PDM_TRACEBACK"
USER_ERROR_EXIT = 2


class UserError(click.ClickException):
    """A mistake in the command or the inputs: one line, exit code 2."""

    exit_code = USER_ERROR_EXIT


def friendly_errors(callback: Callable[..., Any]) -> Callable[..., Any]:
    """Run ``callback``; turn an error :func:`explain` recognises into a :class:`UserError`."""

    @functools.wraps(callback)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return callback(*args, **kwargs)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except Exception as error:
            asked = list(kwargs.get("pipelines") or []) or (
                [kwargs["pipeline"]] if kwargs.get("pipeline") else None
            )
            message = explain(error, pipeline_names=asked)
            if message is None or os.environ.get(TRACEBACK_ENV, "") not in ("", "0"):
                raise
            raise UserError(message) from None

    return wrapper


@click.group(name="pdm_kedro")
def cli() -> None:
    """Project commands (``kedro run`` with clear errors)."""


run = click.Command(
    name="run",
    params=list(kedro_run.params),
    callback=friendly_errors(kedro_run.callback),
    help=kedro_run.help,
    short_help=kedro_run.short_help,
    context_settings=kedro_run.context_settings,
)
cli.add_command(run)

__all__ = ["USER_ERROR_EXIT", "UserError", "cli", "friendly_errors", "run"]
