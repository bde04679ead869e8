"""A machine's edge bundle (manifest + ONNX files) as a read-only catalog dataset, and the atomic
replacement of a bundle by a newly exported one.

The edge_export stage writes every file of a new bundle into the staging folder beside the live
one (``06_models/<machine>/edge.staging/``, see ``conf/base/catalog_edge_export.yml``); its
manifest is written last, only after every family's parity check passed. Then
:func:`promote_staged_bundle` (called by the run guard hook in :mod:`pdm_kedro.hooks` once the
manifest is saved) verifies the staged bundle and swaps it in as a whole: ``renameat2`` with
``RENAME_EXCHANGE`` exchanges the two folders in one step, so a reader sees the old bundle or the
new one, never a mix; a failed or killed export leaves the last good bundle as it was.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import shutil
from pathlib import Path
from typing import Any

from kedro.io import AbstractDataset, DatasetError

from pdm_kedro.edge.bundle import EdgeBundle, load_bundle
from pdm_kedro.edge.errors import BundleError

logger = logging.getLogger(__name__)

STAGING_SUFFIX = ".staging"
_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


def staging_dir(bundle_dir: str | Path) -> Path:
    """Where a new bundle for ``bundle_dir`` is written before it replaces it."""
    bundle_dir = Path(bundle_dir)
    return bundle_dir.with_name(bundle_dir.name + STAGING_SUFFIX)


def _exchange(a: Path, b: Path) -> bool:
    """Swap two existing folders atomically (Linux ``renameat2``); False where unsupported."""
    libc_name = ctypes.util.find_library("c")
    if libc_name is None:
        return False
    libc = ctypes.CDLL(libc_name, use_errno=True)
    renameat2 = getattr(libc, "renameat2", None)
    if renameat2 is None:
        return False
    result = renameat2(
        _AT_FDCWD, os.fsencode(str(a)), _AT_FDCWD, os.fsencode(str(b)), _RENAME_EXCHANGE
    )
    if result == 0:
        return True
    errno = ctypes.get_errno()
    if errno in (22, 38, 95):  # EINVAL, ENOSYS, EOPNOTSUPP: the file system cannot exchange
        return False
    raise OSError(errno, f"renameat2 exchange of {a} and {b}: {os.strerror(errno)}")


def promote_staged_bundle(bundle_dir: str | Path, machine_id: str | None = None) -> Path:
    """Replace ``bundle_dir`` by its staged bundle as a whole, after checking the staged one
    loads (manifest schema and digest, every file's sha256, onnxruntime sessions).

    Raises:
        BundleError: the staged bundle does not load (UnknownMachineError: it is another
            machine's); the live bundle is left untouched either way.
    """
    bundle_dir = Path(bundle_dir)
    staged = staging_dir(bundle_dir)
    load_bundle(staged, machine_id=machine_id)  # raises before anything is replaced
    if not bundle_dir.exists():
        staged.rename(bundle_dir)
    elif _exchange(staged, bundle_dir):
        shutil.rmtree(staged)  # the previous bundle, now under the staging name
    else:  # two renames: a moment without a bundle, never a mixed one
        old = bundle_dir.with_name(f"{bundle_dir.name}.old-{os.getpid()}")
        bundle_dir.rename(old)
        staged.rename(bundle_dir)
        shutil.rmtree(old)
    logger.debug("edge bundle %s replaced by the newly exported one", bundle_dir)
    return bundle_dir


def discard_staged_bundle(bundle_dir: str | Path) -> bool:
    """Remove a staging folder left by an export that did not finish. True if there was one."""
    staged = staging_dir(bundle_dir)
    if staged.exists():
        shutil.rmtree(staged)
        return True
    return False


class EdgeBundleDataset(AbstractDataset[None, EdgeBundle]):
    """Load ``<path>/manifest.json`` and its ONNX files (sha256-checked, schema-validated)."""

    def __init__(self, path: str, threads: int = 1, metadata: dict | None = None) -> None:
        self._path = path
        self._threads = threads
        self.metadata = metadata

    @property
    def path(self) -> Path:
        """The live bundle folder (its staging folder: :func:`staging_dir`)."""
        return Path(self._path)

    def _describe(self) -> dict[str, Any]:
        return {"path": self._path}

    def load(self) -> EdgeBundle:
        """The loaded bundle; a clear error when it is missing or does not match its manifest."""
        try:
            return load_bundle(self._path, threads=self._threads)
        except BundleError as err:
            raise DatasetError(
                f"{err} Build it with `kedro run --namespaces <machine>` (edge_export)."
            ) from None

    def save(self, data: Any) -> None:
        raise DatasetError(
            "the edge bundle is written by the edge_export stage into its staging folder, "
            "then swapped in whole"
        )
