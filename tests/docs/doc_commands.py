"""Extract the shell commands of the docs' fenced ``bash`` blocks."""

from __future__ import annotations

import re
from pathlib import Path

FENCE = re.compile(r"^```bash\s*\n(.*?)^```", re.MULTILINE | re.DOTALL)
COMMENT = re.compile(r"(^|\s)#.*$")


def normalise(command: str) -> str:
    """One command with comments dropped and whitespace collapsed."""
    return " ".join(COMMENT.sub("", command).split())


def commands_in(text: str) -> list[str]:
    """Every command of the text's ``bash`` blocks: continuations joined, ``&&`` chains split."""
    commands = []
    for block in FENCE.findall(text):
        joined = re.sub(r"\\\n\s*", " ", block)
        for line in joined.splitlines():
            for part in normalise(line).split("&&"):
                if part.strip():
                    commands.append(part.strip())
    return commands


def documented_commands(paths: list[Path]) -> dict[str, list[str]]:
    """``{command: [files documenting it]}`` over ``paths``."""
    found: dict[str, list[str]] = {}
    for path in paths:
        for command in commands_in(path.read_text()):
            found.setdefault(command, []).append(path.name)
    return found
