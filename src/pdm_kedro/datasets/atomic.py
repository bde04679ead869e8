"""Atomic file writes for the project's own datasets: a temporary name beside the target, then
``os.replace`` (atomic on one file system), so a killed or failed write leaves the previous file
whole, never a truncated one."""

from __future__ import annotations

import os
from pathlib import Path


def write_bytes_atomic(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through ``.<name>.tmp-<pid>`` in the same folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with tmp.open("wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
