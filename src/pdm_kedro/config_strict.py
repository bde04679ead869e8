"""Strict parameters: unknown keys (with a "did you mean"), split fractions, integer counts.

The reference is the key tree of ``conf/base/parameters*.yml``: a key that an environment file or
a ``--params`` override adds below a known group, and that base does not define, is a typo (the
run would otherwise silently use the default). Machine blocks are checked by their pydantic
schema instead (``extra="forbid"``). Groups whose keys are names chosen by the user (listed in
:data:`FREE_FORM`) are not compared key by key.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

import yaml

from pdm_kedro.fleet import machines_in_parameters

# groups whose keys are user-chosen names (families, fault kinds, sensors, regimes ...)
FREE_FORM = frozenset({"promotion.margin", "simulation.sensor_faults"})
SPLITS = ("train", "val", "test")
INTEGER_KEYS = ("simulation.rows_per_machine", "simulation.seed", "validation.max_null_run")


def reference_tree(conf_source: Path | None) -> dict[str, Any]:
    """The merged key tree of base's top-level parameters files (machine files excluded)."""
    tree: dict[str, Any] = {}
    if conf_source is None:
        return tree
    for path in sorted((Path(conf_source) / "base").glob("parameters*.yml")):
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except (OSError, yaml.YAMLError):
            continue
        if isinstance(data, dict):
            for key, value in data.items():
                tree[key] = (value, str(path))
    return tree


def did_you_mean(key: str, allowed: list[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest allowed key, else ``''``."""
    close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _unknown(given: Any, reference: Any, where: str, source: str, out: list[str]) -> None:
    if not (isinstance(given, dict) and isinstance(reference, dict)) or where in FREE_FORM:
        return
    allowed = sorted(str(k) for k in reference)
    for key, value in given.items():
        path = f"{where}.{key}"
        if key not in reference:
            out.append(
                f"{path}: unknown key{did_you_mean(str(key), allowed)}; {where} allows "
                f"{', '.join(allowed)} (defined in {source})"
            )
        else:
            _unknown(value, reference[key], path, source, out)


def override_problems(overrides: Any, fleet: Any, where: str) -> list[str]:
    """Every key of a machine's ``model_overrides`` block that the fleet-wide parameters
    ``fleet`` do not define (a typo would otherwise be ignored), one line each with a "did you
    mean"; ``where`` is the block's dotted key."""
    if not isinstance(overrides, dict):
        return [f"{where}: must be a mapping of parameter names, got {overrides!r}"]
    problems = []
    allowed = sorted(str(k) for k in fleet) if isinstance(fleet, dict) else []
    for key, value in overrides.items():
        path = f"{where}.{key}"
        if not isinstance(fleet, dict) or key not in fleet:
            problems.append(
                f"{path}: unknown key{did_you_mean(str(key), allowed)}; the fleet-wide "
                f"parameters define {', '.join(allowed) or 'no keys here'}"
            )
        elif isinstance(fleet[key], dict):
            problems += override_problems(value, fleet[key], path)
    return problems


def _get(parameters: dict[str, Any], dotted: str) -> Any:
    value: Any = parameters
    for part in dotted.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def strict_problems(parameters: dict[str, Any], conf_source: Path | None) -> list[str]:
    """Every unknown key, bad split and non-integer count in ``parameters``, one line each."""
    problems: list[str] = []
    reference = reference_tree(conf_source)
    if reference:
        machines = set(machines_in_parameters(parameters))
        for key, value in parameters.items():
            if key in machines or key not in reference:
                continue  # new top-level groups may come from other stages' own files
            ref, source = reference[key]
            _unknown(value, ref, key, source, problems)
    splits = parameters.get("splits")
    if isinstance(splits, dict) and all(k in splits for k in SPLITS):
        try:
            total = sum(float(splits[k]) for k in SPLITS)
        except (TypeError, ValueError):
            problems.append(f"splits: fractions must be numbers, got {dict(splits)}")
        else:
            if abs(total - 1.0) > 1e-6:
                problems.append(
                    f"splits: train + val + test must sum to 1, got {total:g} ({dict(splits)})"
                )
    for dotted in INTEGER_KEYS:
        value = _get(parameters, dotted)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            problems.append(f"{dotted}: must be an integer, got {value!r}")
    return problems
