"""Which documented commands the tests run: a static scan of ``tests/`` for ``run_documented`` calls.

A call counts when each command argument is a string literal, an f-string of module constants, a
module-level string constant (also one imported ``from tests... import NAME``) or a parameter of
a ``@pytest.mark.parametrize`` over such strings. Anything else (a command built at run time) is
not a documented command run as written and does not count.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from tests.docs.documented import RAN, normalise
from tests.session_share import ran_in_session

TESTS_DIR = Path(__file__).resolve().parents[1]
RUNNERS = {"run_documented", "start_documented"}


@dataclass(frozen=True)
class Call:
    command: str
    where: str  # tests/<file>.py:<line>


def _module_name(path: Path) -> str:
    return ".".join(path.relative_to(TESTS_DIR.parent).with_suffix("").parts)


def _path_of(module: str) -> Path | None:
    path = TESTS_DIR.parent.joinpath(*module.split(".")).with_suffix(".py")
    return path if path.is_file() else None


@cache
def _module_constants(path: Path) -> dict[str, object]:
    """Module-level names bound to strings (or tuples/lists of strings) in a test module."""
    tree = ast.parse(path.read_text())
    names: dict[str, object] = {}
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("tests"):
            source = _path_of(node.module)
            if source is not None:
                constants = _module_constants(source)
                for alias in node.names:
                    if alias.name in constants:
                        names[alias.asname or alias.name] = constants[alias.name]
        targets: list[ast.expr] = []
        if isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            targets, value = [node.target], node.value
        for target in targets:
            if isinstance(target, ast.Name):
                resolved = _resolve(value, names)
                if resolved is not None:
                    names[target.id] = resolved
    return names


def _resolve(node: ast.expr, names: dict[str, object]) -> object | None:  # noqa: PLR0911
    """A string or a tuple of strings the expression certainly evaluates to, else None."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.Name):
        return names.get(node.id)
    if isinstance(node, ast.JoinedStr):
        parts = []
        for value in node.values:
            if isinstance(value, ast.Constant):
                parts.append(str(value.value))
            elif (
                isinstance(value, ast.FormattedValue)
                and value.format_spec is None
                and value.conversion == -1
                and isinstance(resolved := _resolve(value.value, names), str)
            ):
                parts.append(resolved)
            else:
                return None
        return "".join(parts)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = _resolve(node.left, names), _resolve(node.right, names)
        return left + right if isinstance(left, str) and isinstance(right, str) else None
    if isinstance(node, ast.Tuple | ast.List):
        items = [_resolve(element, names) for element in node.elts]
        return tuple(items) if all(isinstance(item, str) for item in items) else None
    return None


def _parametrized(function: ast.FunctionDef, names: dict[str, object]) -> dict[str, object]:
    """Argument names of ``@pytest.mark.parametrize("name", [strings])`` on a function."""
    found: dict[str, object] = {}
    for decorator in function.decorator_list:
        if (
            isinstance(decorator, ast.Call)
            and isinstance(decorator.func, ast.Attribute)
            and decorator.func.attr == "parametrize"
            and len(decorator.args) >= 2
            and isinstance(decorator.args[0], ast.Constant)
            and isinstance(decorator.args[0].value, str)
            and "," not in decorator.args[0].value
        ):
            values = _resolve(decorator.args[1], names)
            if isinstance(values, tuple):
                found[decorator.args[0].value.strip()] = values
    return found


def calls_in(path: Path) -> list[Call]:
    """Every documented command a test module runs through ``run_documented``/``start_documented``."""
    constants = _module_constants(path)
    tree = ast.parse(path.read_text())
    where = str(
        path.relative_to(TESTS_DIR.parent) if path.is_relative_to(TESTS_DIR.parent) else path
    )
    calls: list[Call] = []

    def visit(node: ast.AST, names: dict[str, object]) -> None:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            names = {**names, **_parametrized(node, names)}
        if isinstance(node, ast.Call):
            func = node.func
            name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
            if name in RUNNERS:
                for argument in node.args:
                    value = _resolve(argument, names)
                    values = value if isinstance(value, tuple) else (value,)
                    for command in values:
                        if isinstance(command, str):
                            calls.append(Call(normalise(command), f"{where}:{node.lineno}"))
        for child in ast.iter_child_nodes(node):
            visit(child, names)

    visit(tree, constants)
    return calls


def documented_calls() -> dict[str, list[str]]:
    """``{command: [where the tests run it]}`` over every test module."""
    found: dict[str, list[str]] = {}
    for path in sorted(TESTS_DIR.rglob("*.py")):
        for call in calls_in(path):
            found.setdefault(call.command, []).append(call.where)
    return found


def not_run_documented_calls() -> list[str]:
    """Commands a test calls ``run_documented`` with that did not run in this session.

    This process's own runs and, under pytest-xdist, those every worker recorded.
    """
    ran = RAN | ran_in_session()
    return sorted(
        f"{command}  ({', '.join(where)})"
        for command, where in documented_calls().items()
        if command not in ran
    )
