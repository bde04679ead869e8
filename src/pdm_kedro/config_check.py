"""Validate the session's configuration once, before any node runs.

Every machine block (``<machine_id>.machine``) must parse as a :class:`pdm_kedro.fleet.MachineSpec`,
the priority machines must exist and the promotion margins must name defined families. A mistake
is reported with the file that defines the machine, the key and the allowed values (pydantic's
message), instead of surfacing in the first node that reads the machine.

``PDM_CONFIG_CHECK_MACHINES`` (a comma list of machine ids, set by ``pdm-kedro fleet run`` for each
machine's own session) limits the machine blocks checked to those: one machine's broken file
then fails that machine's task only, and a task of a 10,000-machine fleet parses one block.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from pdm_kedro.config_strict import did_you_mean, override_problems, strict_problems
from pdm_kedro.families import FAMILIES
from pdm_kedro.fleet import machines_in_parameters, parse_machine, priority_machines

CHECK_MACHINES_ENV = "PDM_CONFIG_CHECK_MACHINES"


class ConfigError(ValueError):
    """A configuration value no run can use (names the file, the key and what is allowed)."""


def defining_file(conf_source: Path | None, machine_id: str, env: str | None) -> str:
    """The parameters file that defines ``machine_id`` (the environment's, else base's)."""
    if conf_source is None:
        return "conf/*/parameters"
    envs = [e for e in (env, "base") if e]
    for name in envs:
        for path in sorted((conf_source / name).glob("parameters*/**/*.yml")) + sorted(
            (conf_source / name).glob("parameters*.yml")
        ):
            try:
                text = path.read_text()
            except OSError:
                continue
            if f"\n{machine_id}:" in f"\n{text}":
                return str(path)
    return f"{conf_source}/<env>/parameters"


def _location(error: dict[str, Any]) -> str:
    return ".".join(str(part) for part in error["loc"]) or "(block)"


def check_parameters(
    parameters: dict[str, Any], conf_source: Path | None = None, env: str | None = None
) -> None:
    """Raise :class:`ConfigError` listing every invalid machine block and reference."""
    problems = []
    try:
        machines = machines_in_parameters(parameters)
    except ValueError as err:
        raise ConfigError(str(err)) from None
    only = os.environ.get(CHECK_MACHINES_ENV)
    if only:
        wanted = {m.strip() for m in only.split(",") if m.strip()}
        machines = {m: block for m, block in machines.items() if m in wanted}
    for machine_id, block in machines.items():
        try:
            parse_machine(block)
        except ValidationError as err:
            where = defining_file(conf_source, machine_id, env)
            for error in err.errors():
                hint = ""
                if error["type"] == "extra_forbidden":
                    parent = block
                    for part in error["loc"][:-1]:
                        parent = parent.get(part, {}) if isinstance(parent, dict) else {}
                    known = (
                        [k for k in parent if k != error["loc"][-1]]
                        if isinstance(parent, dict)
                        else []
                    )
                    hint = did_you_mean(str(error["loc"][-1]), [str(k) for k in known])
                problems.append(
                    f"{where}: {machine_id}.machine.{_location(error)}: {error['msg']}{hint}"
                )
            continue
        for family, overrides in (block.get("model_overrides") or {}).items():
            problems += [
                f"{defining_file(conf_source, machine_id, env)}: {line}"
                for line in override_problems(
                    overrides,
                    parameters.get(family),
                    f"{machine_id}.machine.model_overrides.{family}",
                )
            ]
    try:
        priority_machines(parameters)
    except KeyError as err:
        problems.append(f"fleet.priority_machines: {err}")
    margins = parameters.get("promotion", {}).get("margin", {})
    unknown = sorted(set(margins) - set(FAMILIES))
    if unknown:
        problems.append(
            f"promotion.margin names unknown families {unknown}; defined: {', '.join(FAMILIES)}"
        )
    problems.extend(strict_problems(parameters, conf_source))
    if problems:
        raise ConfigError(
            "Invalid configuration (nothing was run):\n  - " + "\n  - ".join(problems)
        )
