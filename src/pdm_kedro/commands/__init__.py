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


class _CommandModules(click.Group):
    """The group whose sub-commands are this package's modules, each imported when needed.

    ``pdm-kedro fleet run`` imports ``commands/fleet.py`` only (the ``models`` module alone
    imports MLflow and every pipeline: about 2.5 s before a fleet run could start its
    tracking server). A command whose name is not its module's (``sample-readings`` in
    ``sample_readings.py``) is found by its module name first; listing the commands (``--help``)
    or a name no module matches imports them all.
    """

    def _add_module(self, name: str) -> None:
        module = importlib.import_module(f"{__name__}.{name}")
        command = getattr(module, "command", None)
        if isinstance(command, click.Command) and command.name not in self.commands:
            self.add_command(command)

    def _add_all(self) -> None:
        for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
            self._add_module(info.name)

    def list_commands(self, ctx: click.Context) -> list[str]:
        """Every module's command."""
        self._add_all()
        return super().list_commands(ctx)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        """The command ``cmd_name``, importing its module (or, failing that, every module)."""
        if cmd_name not in self.commands:
            module = cmd_name.replace("-", "_")
            if module in {info.name for info in pkgutil.iter_modules(__path__)}:
                self._add_module(module)
        if cmd_name not in self.commands:
            self._add_all()
        return super().get_command(ctx, cmd_name)


@click.group(cls=_CommandModules, context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """Predictive maintenance for an industrial fleet (pdm_kedro)."""
