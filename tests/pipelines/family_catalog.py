"""Catalog entries a family template needs besides its features: the promotion inputs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kedro.io import AbstractDataset, MemoryDataset

from pdm_kedro.datasets.mlflow_model_registry import MlflowPromotionDataset

PROMOTION = {
    "margin": {"classification": 0.01, "regression": 1.0, "anomaly": 0.01, "forecasting": 0.1},
    "guard_tolerance": 0.0,
}


class LoadsNone(AbstractDataset):
    """A dataset that loads None: the ``champion_model`` of a registry without a champion yet, an
    input a run does not read (the splits a champion's features are rebuilt from when there is
    none), or the served baselines of a machine's first run."""

    def load(self) -> None:
        return None

    def save(self, data: Any) -> None:
        raise NotImplementedError

    def _describe(self) -> dict[str, Any]:
        return {}


def promotion_datasets(
    machine_id: str, family: str, sources: dict[str, Any] | None = None
) -> dict[str, AbstractDataset]:
    """``<machine>.<family>.champion_model`` (none yet), ``params:promotion``, and what the
    row-wise families (classification, regression, anomaly) rebuild a champion's features from (``validated_test``,
    ``validated_val``, ``sensor_baselines``): ``sources`` by name when given, else None (read
    only when a champion exists, and none does here; tests/test_promotion.py has that path)."""
    sources = sources or {}
    rebuild = family in ("classification", "regression", "anomaly")
    return {
        f"{machine_id}.{family}.champion_model": LoadsNone(),
        "params:promotion": MemoryDataset(PROMOTION),
        **{
            f"{machine_id}.{name}": MemoryDataset(sources[name]) if name in sources else LoadsNone()
            for name in ("validated_test", "validated_val", "sensor_baselines")
            if rebuild
        },
    }


def production_dataset(
    machine_id: str, family: str, audit_path: Path
) -> dict[str, AbstractDataset]:
    """``<machine>.<family>.production_model`` as the project's own dataset (tracking off: the
    decision is written to ``audit_path``, loading gives the production package it kept), for a
    template whose nodes read the production model back."""
    return {
        f"{machine_id}.{family}.production_model": MlflowPromotionDataset(
            registered_model_name=f"{machine_id}-{family}", audit_path=str(audit_path)
        )
    }
