"""Catalog entries a family template needs besides its features: the promotion inputs."""

from __future__ import annotations

from typing import Any

from kedro.io import AbstractDataset, MemoryDataset

PROMOTION = {
    "margin": {"classification": 0.01, "regression": 1.0, "anomaly": 0.01, "forecasting": 0.1},
    "guard_tolerance": 0.0,
}


class NoChampion(AbstractDataset):
    """The ``champion_model`` of a registry without a champion yet (loads None)."""

    def load(self) -> None:
        return None

    def save(self, data: Any) -> None:
        raise NotImplementedError

    def _describe(self) -> dict[str, Any]:
        return {}


def promotion_datasets(machine_id: str, family: str) -> dict[str, AbstractDataset]:
    """``<machine>.<family>.champion_model`` (none yet) and ``params:promotion``."""
    return {
        f"{machine_id}.{family}.champion_model": NoChampion(),
        "params:promotion": MemoryDataset(PROMOTION),
    }
