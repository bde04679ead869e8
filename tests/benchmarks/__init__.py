"""Tests of the ``benchmarks/`` scripts (not a package of the project: loaded by path)."""

from __future__ import annotations

import importlib.util
from types import ModuleType

from tests.conftest import PROJECT_ROOT


def load_benchmark(name: str) -> ModuleType:
    """``benchmarks/<name>.py`` as a module (its ``main`` is not run)."""
    spec = importlib.util.spec_from_file_location(name, PROJECT_ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
