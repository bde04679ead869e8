"""A machine's edge bundle (manifest + ONNX files) as a read-only catalog dataset."""

from __future__ import annotations

from typing import Any

from kedro.io import AbstractDataset, DatasetError

from pdm_kedro.edge.bundle import EdgeBundle, load_bundle
from pdm_kedro.edge.errors import BundleError


class EdgeBundleDataset(AbstractDataset[None, EdgeBundle]):
    """Load ``<path>/manifest.json`` and its ONNX files (sha256-checked, schema-validated)."""

    def __init__(self, path: str, threads: int = 1, metadata: dict | None = None) -> None:
        self._path = path
        self._threads = threads
        self.metadata = metadata

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
        raise DatasetError("the edge bundle is written by the edge_export stage, file by file")
