"""The project's KedroContext: no catalog entry per key nested inside a machine block.

Kedro adds a ``params:<path>`` MemoryDataset for every nested parameter key, about 46 per
machine (sensors, failure modes, signatures), each costing a copy-mode probe: the largest
start-up cost at thousands of machines. The pipelines read a machine only as a whole
(``params:machine`` in its namespace, i.e. ``params:<machine_id>.machine``), so keys below
``<machine_id>.machine.`` are left out of the catalog; every other parameter keeps its entries.

A machine whose block sets ``model_overrides`` gets ``params:<machine_id>.<family>``: that
family's fleet-wide parameters with the machine's overrides merged in
(:func:`pdm_kedro.fleet.family_parameters`); the registry wires the machine's stages to it.
"""

from __future__ import annotations

from typing import Any

from kedro.framework.context import KedroContext

from pdm_kedro.fleet import family_parameters


class FleetContext(KedroContext):
    """KedroContext whose catalog holds each machine block whole, not key by key."""

    def _get_parameters(self) -> dict[str, Any]:
        params = super()._get_parameters()
        every = self.params  # a property that copies and validates: read it once
        machines = {
            key
            for key, value in every.items()
            if isinstance(value, dict) and isinstance(value.get("machine"), dict)
        }

        def inside_machine_block(name: str) -> bool:
            parts = name.removeprefix("params:").split(".", 2)
            return len(parts) == 3 and parts[1] == "machine" and parts[0] in machines

        out = {name: value for name, value in params.items() if not inside_machine_block(name)}
        for machine_id in machines:
            block = every[machine_id]["machine"]
            for family in block.get("model_overrides") or {}:
                merged = family_parameters(every, block, family)
                out |= _flattened(f"params:{machine_id}.{family}", merged)
        return out


def _flattened(name: str, value: Any) -> dict[str, Any]:
    """``{name: value}`` and an entry per nested key (``name.key``), as Kedro adds parameters."""
    out = {name: value}
    if isinstance(value, dict):
        for key, inner in value.items():
            out |= _flattened(f"{name}.{key}", inner)
    return out
