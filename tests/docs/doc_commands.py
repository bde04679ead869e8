"""The shell commands (and Python snippets) of the docs' fenced blocks, with their "not run" marks.

A fenced ``bash`` block's commands are either run as written by a test (through
``tests/docs/documented.py::run_documented``) or the paragraph right after the block starts with
``Not run by the tests:`` followed by the reason. The same holds for ``python`` blocks.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from tests.docs.documented import normalise

PROJECT_ROOT = Path(__file__).resolve().parents[2]
FENCE = re.compile(r"^```(bash|python)[ \t]*\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)
NOT_RUN = "Not run by the tests:"


@dataclass(frozen=True)
class DocBlock:
    """One fenced block of a document."""

    path: str  # relative to the project
    line: int  # 1-based line of the opening fence
    language: str  # bash | python
    text: str
    not_run_reason: str | None  # the reason after "Not run by the tests:", or None

    @property
    def commands(self) -> list[str]:
        """A bash block's commands: continuations joined, comments dropped, one per line."""
        if self.language != "bash":
            return []
        joined = re.sub(r"\\\n\s*", " ", self.text)
        return [cmd for cmd in (normalise(line) for line in joined.splitlines()) if cmd]


def _paragraph_after(text: str, end: int) -> str:
    rest = text[end:].lstrip("\n")
    paragraph = re.split(r"\n\s*\n", rest, maxsplit=1)[0]
    return " ".join(paragraph.split())


def blocks_in(path: Path) -> list[DocBlock]:
    """Every ``bash`` and ``python`` block of a Markdown file."""
    text = path.read_text()
    blocks = []
    for match in FENCE.finditer(text):
        after = _paragraph_after(text, match.end())
        reason = after[len(NOT_RUN) :].strip() if after.startswith(NOT_RUN) else None
        blocks.append(
            DocBlock(
                path=str(path.resolve().relative_to(PROJECT_ROOT)),
                line=text.count("\n", 0, match.start()) + 1,
                language=match.group(1),
                text=match.group(2),
                not_run_reason=reason,
            )
        )
    return blocks


def documented_paths() -> list[Path]:
    """README.md and every docs/*.md."""
    return [PROJECT_ROOT / "README.md", *sorted((PROJECT_ROOT / "docs").glob("*.md"))]


def documented_blocks() -> list[DocBlock]:
    return [block for path in documented_paths() for block in blocks_in(path)]


def documented_commands(blocks: list[DocBlock] | None = None) -> dict[str, list[DocBlock]]:
    """``{command: [bash blocks holding it]}`` over the docs."""
    found: dict[str, list[DocBlock]] = {}
    for block in documented_blocks() if blocks is None else blocks:
        for command in block.commands:
            found.setdefault(command, []).append(block)
    return found
