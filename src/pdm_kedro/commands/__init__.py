"""The ``pdm-kedro`` command: one click group, one module per sub-command group.

(Not ``pdm_kedro.cli``: Kedro reads a project's ``cli`` module as its own ``kedro`` commands.)

Every module in this package that defines a click command or group named ``command`` is added
to the group under that command's own name (e.g. ``commands/serve.py`` -> ``pdm-kedro serve``), so a
new sub-command is a new file, never an edit of a shared list. ``pdm-kedro run ...`` runs the
project's pipelines exactly like ``kedro run ...``.
"""

from __future__ import annotations

import importlib
import pkgutil

import click


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """Predictive maintenance for an industrial fleet (pdm_kedro)."""


def _add_subcommands(group: click.Group) -> None:
    """Attach the ``command`` of every module of this package to ``group``."""
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{__name__}.{info.name}")
        command = getattr(module, "command", None)
        if isinstance(command, click.Command):
            group.add_command(command)


_add_subcommands(cli)
