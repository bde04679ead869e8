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

A run of a few machines reads only their machine files (:func:`requested_machines`): ``kedro run
--namespaces m`` (the machines of its namespaces), ``kedro run --pipelines m1,m2`` when every name
is a machine id, or a fleet task inside :func:`machine_scope`. Every machine file is still listed
and its top-level keys found with a line scan (no YAML parse, cached per process like the parse),
so duplicate keys are still an error; only the files defining the requested machines, the
priority machines (``fleet.priority_machines``, what ``__default__`` and the checks read) and the
machines named by ``--params`` are parsed. Any other command (``kedro run``, ``kedro registry
list``, kedro-viz) reads every machine as before. The run's pipeline is the same: a namespace
filter drops every other machine's nodes, and the fleet-level nodes, anyway.
"""

from __future__ import annotations

import contextlib
import contextvars
import copy
import importlib.util
import os
import re
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import yaml
from fsspec.implementations.local import LocalFileSystem
from kedro.config import OmegaConfigLoader

MACHINES_FOLDER = "machines"

# Kedro makes a MemoryDataset per parameter key (about 46 per machine), and each one tries
# `import ibis` (kedro.io.memory_dataset._infer_copy_mode). Without ibis installed every try
# scans sys.path again: about 1 ms each, the largest start-up cost at thousands of machines.
# Recording "not installed" once makes the same ImportError immediate.
if "ibis" not in sys.modules and importlib.util.find_spec("ibis") is None:
    sys.modules["ibis"] = None  # type: ignore[assignment]
_PARSED: dict[tuple[str, int, int], dict[str, Any]] = {}
_LISTINGS: dict[tuple[str, int, bool], list] = {}
_TEXTS: dict[tuple[str, int, int], tuple[bool, frozenset[str]]] = {}
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
# a top-level key: a line starting in column 0 with a plain or quoted key and a colon
TOP_LEVEL_KEY = re.compile(
    r"""^(?:"([^"\n]+)"|'([^'\n]+)'|([^\s#'"\-?:{\[][^:\n]*?))\s*:(?:\s|$)""", re.M
)
_SCOPE: contextvars.ContextVar[frozenset[str] | None] = contextvars.ContextVar(
    "pdm_machine_scope", default=None
)


@contextlib.contextmanager
def machine_scope(machine_ids: Iterable[str]) -> Iterator[None]:
    """Within the block, config loaders read only these machines' files (plus the priority ones).

    A fleet task runs one machine's session inside it (there is no ``kedro run`` command line
    to read the machines from).
    """
    token = _SCOPE.set(frozenset(machine_ids))
    try:
        yield
    finally:
        _SCOPE.reset(token)


def scoped_machines() -> frozenset[str] | None:
    """The machines of the enclosing :func:`machine_scope` block (a fleet task), or None."""
    return _SCOPE.get()


def requested_machines() -> tuple[frozenset[str], bool] | None:
    """The machines a run asks for, or None (every machine).

    Returns ``(names, exact)``: ``exact`` names are machines for sure (a :func:`machine_scope`
    block, the first part of each ``kedro run --namespaces`` entry); otherwise the names are
    ``--pipelines`` names, which limit the read only if every one is a machine id.
    """
    scoped = _SCOPE.get()
    if scoped is not None:
        return scoped, True
    import click  # noqa: PLC0415 (only when a loader reads parameters)

    ctx = click.get_current_context(silent=True)
    if ctx is None or "namespaces" not in ctx.params or ctx.command.name != "run":
        return None
    namespaces = [n for n in ctx.params.get("namespaces") or () if n]
    if namespaces:
        return frozenset(n.split(".")[0] for n in namespaces), True
    names = [n for n in [*(ctx.params.get("pipelines") or ()), ctx.params.get("pipeline")] if n]
    return (frozenset(names), False) if names else None


def deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """``over`` merged into a copy of ``base``: dicts merge key by key, other values replace."""
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def _file_key(path: Path) -> tuple[str, int, int]:
    stat = path.stat()
    return (str(path), stat.st_size, stat.st_mtime_ns)


def _scan(path: Path) -> tuple[bool, frozenset[str]]:
    """``(plain, top-level keys)`` of a machine file, by a line scan (no YAML parse)."""
    key = _file_key(path)
    if key not in _TEXTS:
        text = path.read_text(encoding="utf-8")
        keys = frozenset(next(g for g in m.groups() if g) for m in TOP_LEVEL_KEY.finditer(text))
        _TEXTS[key] = ("${" not in text, keys)
    return _TEXTS[key]


def _parse_plain(path: Path) -> dict[str, Any] | None:
    """The file's content as plain data, or None when it needs OmegaConf (``${...}``)."""
    key = _file_key(path)
    if key not in _PARSED:
        text = path.read_text(encoding="utf-8")
        if "${" in text:
            return None
        _PARSED[key] = yaml.load(text, Loader=_Loader) or {}  # noqa: S506 (a safe loader)
    return _PARSED[key]


class ListedOnceFileSystem(LocalFileSystem):
    """The local filesystem whose folder listings are kept for the process, keyed by the
    folder's modification time (it changes when an entry is added, removed or renamed).

    Kedro globs the whole conf tree for every configuration key it reads (``**/catalog*``
    walks ``parameters/machines/`` too), listing every machine file about ten times per run.
    """

    def ls(self, path: str, detail: bool = False, **kwargs: Any) -> list:
        """``LocalFileSystem.ls``, from the cache when the folder did not change."""
        try:
            stamp = os.stat(self._strip_protocol(path)).st_mtime_ns
        except OSError:
            return super().ls(path, detail=detail, **kwargs)
        key = (str(path), stamp, bool(detail))
        if key not in _LISTINGS:
            _LISTINGS[key] = super().ls(path, detail=detail, **kwargs)
        return list(_LISTINGS[key])


class FleetConfigLoader(OmegaConfigLoader):
    """OmegaConfigLoader whose ``parameters`` read plain machine files with the C YAML parser,
    and only the requested machines' files when a run asks for a few (module docstring)."""

    _fast_machines: dict[Path, frozenset[str]] | None = None

    def _initialise_filesystem_and_protocol(self, conf_source: str) -> tuple[Any, str]:
        fs, protocol = super()._initialise_filesystem_and_protocol(conf_source)
        if protocol == "file" and type(fs) is LocalFileSystem:
            return ListedOnceFileSystem(), protocol
        return fs, protocol

    def _is_hidden(self, path_str: str) -> bool:
        """Kedro's check (a hidden file or folder in the path), once per folder: Kedro resolves
        every file's path (two realpath walks), about 0.5 ms per machine file per read."""
        path = Path(path_str)
        if path.name.startswith("."):
            return True
        cache = self.__dict__.setdefault("_hidden_dirs", {})
        folder = str(path.parent)
        if folder not in cache:
            cache[folder] = super()._is_hidden(folder)
        return cache[folder]

    def _is_machine_file(self, path: Path) -> bool:
        return (
            self._protocol == "file"
            and path.parent.name == MACHINES_FOLDER
            and path.parent.parent.name == "parameters"
            and path.suffix in {".yml", ".yaml"}
        )

    def _is_valid_config_path(self, path: Path) -> bool:
        if self._fast_machines is not None and self._is_machine_file(path) and path.is_file():
            plain, keys = _scan(path)
            if plain:
                self._fast_machines[path] = keys
                return False  # read here, not by OmegaConf
        return super()._is_valid_config_path(path)

    def __getitem__(self, key: str) -> dict[str, Any]:
        if key != "parameters" or key in self:
            return super().__getitem__(key)
        # a session reads its parameters two or three times (the config check, the validation
        # scoped to its pipelines, the catalog): parsed once per loader, a copy each time
        reads = self.__dict__.setdefault("_parameters_read", {})
        scope = requested_machines()  # what is read depends on the machines asked for
        if scope not in reads:
            reads[scope] = self._read_parameters()
        return copy.deepcopy(reads[scope])

    def _read_parameters(self) -> dict[str, Any]:
        key = "parameters"
        self._fast_machines = {}
        try:
            params = super().__getitem__(key)
            listed, self._fast_machines = self._fast_machines, None
        finally:
            self._fast_machines = None
        wanted = self._wanted_machines(listed, params)
        fast = {
            path: _parse_plain(path) or {}
            for path, keys in listed.items()
            if wanted is None or not keys or keys & wanted
        }
        machines = self._merge_machine_files(fast, listed)
        for name, value in params.items():  # OmegaConf-read files and --params win
            current = machines.get(name)
            both_dicts = isinstance(current, dict) and isinstance(value, dict)
            machines[name] = deep_merge(current, value) if both_dicts else value
        return machines

    def _wanted_machines(
        self, listed: dict[Path, frozenset[str]], params: dict[str, Any]
    ) -> frozenset[str] | None:
        """The machines whose files are parsed; None: all of them."""
        requested = requested_machines()
        if requested is None:
            return None
        names, exact = requested
        if not exact:
            known = frozenset().union(*listed.values()) if listed else frozenset()
            if not names <= known:  # a stage, `fleet`, `__default__`: every machine
                return None
        fleet = params.get("fleet") if isinstance(params.get("fleet"), dict) else {}
        priority = frozenset(fleet.get("priority_machines") or ())
        return names | priority | frozenset(self.runtime_params or {})

    def _merge_machine_files(
        self, files: dict[Path, dict[str, Any]], listed: dict[Path, frozenset[str]]
    ) -> dict[str, Any]:
        """Base machine files, then the run environment's soft-merged over them.

        ``listed`` (every plain machine file and its scanned keys) finds keys defined twice in
        one environment, also among files not parsed."""
        base_root = Path(self.conf_source, self.base_env)
        # by prefix, not Path.resolve() per file (a realpath walk each: seconds at 10,000)
        base_prefixes = tuple(f"{root}{os.sep}" for root in {base_root, base_root.resolve()})
        env_root = Path(self.conf_source, self.env or self.default_run_env or self.base_env)
        env_prefixes = tuple(f"{root}{os.sep}" for root in {env_root, env_root.resolve()})
        per_env: dict[bool, dict[str, Any]] = {True: {}, False: {}}
        seen: dict[tuple[bool, str], Path] = {}
        for path in sorted(set(files) | set(listed)):
            name = str(path)
            in_base = name.startswith(base_prefixes) or (
                not name.startswith(env_prefixes) and base_root.resolve() in path.resolve().parents
            )
            content = files.get(path)
            for name in content if content is not None else listed[path]:
                if (in_base, name) in seen:
                    raise ValueError(
                        f"Duplicate keys found in {seen[in_base, name]} and {path}: {name}"
                    )
                seen[in_base, name] = path
                if content is not None:
                    per_env[in_base][name] = content[name]
        merged = per_env[True]
        for name, value in per_env[False].items():
            current = merged.get(name)
            both_dicts = isinstance(current, dict) and isinstance(value, dict)
            merged[name] = deep_merge(current, value) if both_dicts else value
        return merged
