"""Import rules of the pipelines: no pipeline imports another, no import inside a function."""

from __future__ import annotations

import ast
from pathlib import Path

PIPELINES = Path(__file__).resolve().parents[2] / "src" / "pdm_kedro" / "pipelines"


def _imports(path: Path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    nested = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            for inner in ast.walk(node):
                if isinstance(inner, ast.Import | ast.ImportFrom):
                    nested.add(id(inner))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolve against the file's package
                package = path.parent.relative_to(PIPELINES.parents[1]).parts
                parts = list(package[: len(package) - node.level + 1])
                base = ".".join(parts + ([base] if base else []))
            names = [base]
        else:
            continue
        for name in names:
            yield name, id(node) in nested, node.lineno


def _cross_pipeline(path: Path, name: str) -> bool:
    own = path.relative_to(PIPELINES).parts[0]
    parts = name.split(".")
    return parts[:2] == ["pdm_kedro", "pipelines"] and len(parts) > 2 and parts[2] != own


def _violations():
    found = []
    for path in sorted(PIPELINES.rglob("*.py")):
        if path.parent == PIPELINES:
            continue
        for name, in_function, line in _imports(path):
            rel = path.relative_to(PIPELINES).as_posix()
            if in_function:
                found.append((rel, name, line, "import inside a function"))
            elif _cross_pipeline(path, name):
                found.append((rel, name, line, "imports another pipeline"))
    return found


def test_no_import_inside_a_function():
    hidden = [v for v in _violations() if v[3] == "import inside a function"]
    assert not hidden, hidden


def test_no_pipeline_imports_another():
    cross = [v for v in _violations() if v[3] == "imports another pipeline"]
    assert not cross, cross
