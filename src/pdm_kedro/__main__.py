"""``pdm-kedro`` / ``python -m pdm_kedro``: the project's command (see ``pdm_kedro.commands``)."""

from __future__ import annotations

import sys

from pdm_kedro.commands import cli


def main(*args, **kwargs) -> None:  # noqa: ANN002, ANN003
    """Run the ``pdm-kedro`` command group."""
    kwargs.setdefault("standalone_mode", not hasattr(sys, "ps1"))
    return cli(*args, **kwargs)


if __name__ == "__main__":
    main()
