"""A read-only JSON dataset that loads as None when its file does not exist yet.

The feature stage reads the sensor baselines the machine is served with (the last run's
``sensor_baselines.json``) through it: on a machine's first run there are none.
"""

from __future__ import annotations

from typing import Any

from kedro.io import DatasetError
from kedro_datasets.json import JSONDataset


class OptionalJSONDataset(JSONDataset):
    """``JSONDataset`` whose load is None (not an error) when the file is missing; never saved."""

    def load(self) -> Any:
        """The file's JSON content, or None when there is no file."""
        if not self._exists():
            return None
        return super().load()

    def save(self, data: Any) -> None:  # noqa: ARG002
        """Refused: another catalog entry writes this file."""
        raise DatasetError(f"{self._filepath} is read-only here (another dataset writes it)")
