"""Per-operating-condition sensor scaling inside the feature stage (fitted on train only).

A machine whose ``source.operating_conditions.normalise_sensors`` is true (a file source's
derived or given conditions, or a simulated machine's regimes) has every sensor turned into a
z-score with its condition's train mean and standard deviation before the window features; the
constants live in ``sensor_baselines["condition_scaling"]`` and the edge manifest.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from pdm_kedro import contract as c
from pdm_kedro.core import operating_conditions as oc
from pdm_kedro.fleet import parse_machine


def condition_scaling_declared(machine: dict[str, Any]) -> bool:
    """Whether the machine's source asks for per-condition sensor scaling."""
    source = dict(machine.get("source") or {})
    declared = source.get("operating_conditions") or {}
    return bool(declared) and bool(dict(declared).get("normalise_sensors", True))


def fit_condition_scaling_of(train: pd.DataFrame, machine: dict[str, Any]) -> dict[str, Any] | None:
    """Per-condition sensor means and standard deviations of the train rows (None: not asked)."""
    if not condition_scaling_declared(machine):
        return None
    sensors = parse_machine(machine).sensor_names
    if c.REGIME not in train.columns:
        raise ValueError(
            f"{machine.get('machine_id')}: operating_conditions.normalise_sensors needs a "
            f"'{c.REGIME}' column in the training split"
        )
    return oc.fit_condition_scaling(
        train[sensors].to_numpy(dtype=float), train[c.REGIME].astype(str).to_numpy(), sensors
    )


def apply_condition_scaling_of(
    frame: pd.DataFrame, scaling: dict[str, Any] | None, sensors: list[str]
) -> pd.DataFrame:
    """The frame with its sensors as per-condition z-scores (unchanged without a scaling)."""
    if not scaling:
        return frame
    out = frame.copy()
    out[sensors] = oc.apply_condition_scaling(
        frame[sensors].to_numpy(dtype=float), frame[c.REGIME].astype(str).to_numpy(), scaling
    )
    return out
