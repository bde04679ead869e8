"""``OnnxModelDataset``: an ONNX model (``onnx.ModelProto``) stored as a ``.onnx`` file."""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import Any

import onnx
from kedro.io import AbstractDataset, DatasetError

from pdm_kedro.datasets.atomic import write_bytes_atomic


class OnnxModelDataset(AbstractDataset[onnx.ModelProto, onnx.ModelProto]):
    """Saves an ``onnx.ModelProto`` as its serialized bytes (atomically: a temporary name, then
    a rename) and loads it back.

    Example catalog entry (``kedro_mlflow.io.artifacts.MlflowArtifactDataset`` can wrap it)::

        "{machine}.edge_{family}_onnx":
          type: pdm_kedro.datasets.onnx_dataset.OnnxModelDataset
          filepath: ${data_root:}/06_models/{machine}/edge.staging/{family}.onnx
    """

    def __init__(self, filepath: str, metadata: dict[str, Any] | None = None) -> None:
        """Args:
        filepath: local path of the ``.onnx`` file.
        metadata: free-form metadata (kedro-viz layer, ...), ignored by the dataset.
        """
        self._filepath = PurePosixPath(filepath)
        self.metadata = metadata

    def _load(self) -> onnx.ModelProto:
        path = Path(self._filepath)
        if not path.is_file():
            raise DatasetError(f"ONNX model file {path} does not exist.")
        return onnx.load_model_from_string(path.read_bytes())

    def _save(self, data: onnx.ModelProto) -> None:
        if not isinstance(data, onnx.ModelProto):
            raise DatasetError(
                f"OnnxModelDataset saves onnx.ModelProto objects, got {type(data).__name__}."
            )
        write_bytes_atomic(self._filepath, data.SerializeToString())

    def _exists(self) -> bool:
        return Path(self._filepath).is_file()

    def _describe(self) -> dict[str, Any]:
        return {"filepath": str(self._filepath)}
