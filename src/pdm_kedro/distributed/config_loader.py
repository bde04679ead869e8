"""Kedro's OmegaConfigLoader, with machine files read at the speed of the C YAML parser.

OmegaConf costs about 50 ms per machine file (parse, wrap every value in a node, merge): 10 s
for 200 machines, minutes for thousands, paid by the registry and again by the session. A
machine file (``<env>/parameters/machines/*.yml``) that uses no interpolation (``${...}``) is
plain YAML: :class:`FleetConfigLoader` parses those with ``yaml.CSafeLoader`` (about 1 ms each)
and keeps the parse in memory for the process, keyed by each file's path, size and modification
time, so the registry and the session of one ``kedro run`` parse each file once.

Semantics kept: the same files, one top-level key per machine, a key defined twice in one
environment is an error, the run environment's machine file soft-merges over the base one, and
everything else (every other parameters file, ``--params`` runtime values) goes through
OmegaConf exactly as before and wins over the machine files. A machine file with ``${...}`` is
read by OmegaConf as before.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

import yaml
from kedro.config import OmegaConfigLoader

MACHINES_FOLDER = "machines"

# Kedro makes a MemoryDataset per parameter key (about 46 per machine), and each one tries
# `import ibis` (kedro.io.memory_dataset._infer_copy_mode). Without ibis installed every try
# scans sys.path again: about 1 ms each, the largest start-up cost at thousands of machines.
# Recording "not installed" once makes the same ImportError immediate.
if "ibis" not in sys.modules and importlib.util.find_spec("ibis") is None:
    sys.modules["ibis"] = None  # type: ignore[assignment]
_PARSED: dict[tuple[str, int, int], dict[str, Any]] = {}
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """``over`` merged into a copy of ``base``: dicts merge key by key, other values replace."""
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def _parse_plain(path: Path) -> dict[str, Any] | None:
    """The file's content as plain data, or None when it needs OmegaConf (``${...}``)."""
    stat = path.stat()
    key = (str(path), stat.st_size, stat.st_mtime_ns)
    if key not in _PARSED:
        text = path.read_text(encoding="utf-8")
        if "${" in text:
            return None
        _PARSED[key] = yaml.load(text, Loader=_Loader) or {}  # noqa: S506 (a safe loader)
    return _PARSED[key]


class FleetConfigLoader(OmegaConfigLoader):
    """OmegaConfigLoader whose ``parameters`` read plain machine files with the C YAML parser."""

    _fast_machines: dict[Path, dict[str, Any]] | None = None

    def _is_machine_file(self, path: Path) -> bool:
        return (
            self._protocol == "file"
            and path.parent.name == MACHINES_FOLDER
            and path.parent.parent.name == "parameters"
            and path.suffix in {".yml", ".yaml"}
        )

    def _is_valid_config_path(self, path: Path) -> bool:
        if self._fast_machines is not None and self._is_machine_file(path) and path.is_file():
            content = _parse_plain(path)
            if content is not None:
                self._fast_machines[path] = content
                return False  # read here, not by OmegaConf
        return super()._is_valid_config_path(path)

    def __getitem__(self, key: str) -> dict[str, Any]:
        if key != "parameters" or key in self:
            return super().__getitem__(key)
        self._fast_machines = {}
        try:
            params = super().__getitem__(key)
            fast, self._fast_machines = self._fast_machines, None
        finally:
            self._fast_machines = None
        machines = self._merge_machine_files(fast)
        for name, value in params.items():  # OmegaConf-read files and --params win
            current = machines.get(name)
            both_dicts = isinstance(current, dict) and isinstance(value, dict)
            machines[name] = deep_merge(current, value) if both_dicts else value
        return machines

    def _merge_machine_files(self, files: dict[Path, dict[str, Any]]) -> dict[str, Any]:
        """Base machine files, then the run environment's soft-merged over them."""
        base_root = Path(self.conf_source, self.base_env).resolve()
        per_env: dict[bool, dict[str, Any]] = {True: {}, False: {}}
        seen: dict[tuple[bool, str], Path] = {}
        for path in sorted(files):
            in_base = base_root in path.resolve().parents
            for name, value in files[path].items():
                if (in_base, name) in seen:
                    raise ValueError(
                        f"Duplicate keys found in {seen[in_base, name]} and {path}: {name}"
                    )
                seen[in_base, name] = path
                per_env[in_base][name] = value
        merged = per_env[True]
        for name, value in per_env[False].items():
            current = merged.get(name)
            both_dicts = isinstance(current, dict) and isinstance(value, dict)
            merged[name] = deep_merge(current, value) if both_dicts else value
        return merged
