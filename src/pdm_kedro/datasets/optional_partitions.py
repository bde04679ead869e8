"""A partitioned dataset that loads as an empty dict when it has no partitions yet.

The continuous-training loop keeps its state as partitions (the batches already scored, the
monitoring windows already computed): on the first cycle there are none, which Kedro's
``PartitionedDataset`` reports as an error.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kedro.io import DatasetError
from kedro_datasets.partitions import PartitionedDataset


class OptionalPartitionedDataset(PartitionedDataset):
    """``PartitionedDataset`` whose load is ``{}`` (not an error) when nothing is stored yet."""

    def load(self) -> dict[str, Callable[[], Any]]:
        """The partitions' loaders by partition id; ``{}`` when the folder is empty or missing."""
        try:
            return super().load()
        except DatasetError as err:
            if "No partitions found" in str(err):
                return {}
            raise
