"""Typed machine configuration and the fleet read from ``conf/``.

A machine is a top-level parameters key ``<machine_id>`` holding a ``machine:`` block (one file per
machine in ``conf/base/parameters/machines/``). Adding a machine is adding such a file.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from pdm_kedro.families import FAMILIES

logger = logging.getLogger(__name__)

MACHINE_ID_PATTERN = re.compile(r"^[a-z][a-z0-9_]*$")


class UnknownMachineError(KeyError):
    """A machine id that no config entry defines."""

    def __str__(self) -> str:  # KeyError quotes its message; this one reads as a sentence
        return str(self.args[0])


class SensorSpec(BaseModel):
    """One sensor of a machine: unit, nominal value, noise and physical range.

    ``nominal`` and ``noise`` drive the simulator; file sources may leave them out (the feature
    stage then derives the scaling floor from the data).
    """

    model_config = ConfigDict(extra="forbid")

    name: str
    kind: str = Field(description="temperature, vibration, pressure, current, flow, speed, ...")
    unit: str
    nominal: float | None = None
    noise: float | None = Field(default=None, ge=0)
    min: float
    max: float
    load_sensitivity: float = 0.0
    daily_amplitude: float = 0.0

    @model_validator(mode="after")
    def _check_range(self) -> SensorSpec:
        if self.nominal is not None and not self.min <= self.nominal <= self.max:
            raise ValueError(
                f"sensor {self.name}: nominal {self.nominal} outside [{self.min}, {self.max}]"
            )
        return self


class SignatureSpec(BaseModel):
    """How a failure mode shows on one sensor at failure (wear = 1)."""

    model_config = ConfigDict(extra="forbid")

    level: float = 0.0  # relative change of the sensor's level (0.3 = +30 % of nominal)
    noise: float = 0.0  # relative increase of the sensor's noise (2.0 = three times the noise)


class FailureModeSpec(BaseModel):
    """A failure mode and its sensor signature."""

    model_config = ConfigDict(extra="forbid")

    description: str = ""
    signature: dict[str, SignatureSpec]
    # What maintenance does about it (returned with a diagnosis; docs/explanations.md)
    action: str | None = None  # recommended action, e.g. "inspect and replace the bearings"
    part: str | None = None  # the part usually replaced
    repair_time_h: float | None = Field(default=None, gt=0)  # typical repair time, hours


class SourceSpec(BaseModel):
    """Where a machine's raw data comes from."""

    model_config = ConfigDict(extra="allow")

    type: Literal["synthetic", "file"] = "synthetic"


SIMULATOR_FIELDS = ("power_kw", "voltage", "age_years")


class MachineSpec(BaseModel):
    """A machine's metadata, sensors, failure modes and data source."""

    model_config = ConfigDict(extra="forbid")

    machine_id: str
    category: str
    manufacturer: str
    model: str
    power_kw: float | None = Field(default=None, ge=0, description="simulator only")
    rated_speed_rpm: float = Field(ge=0)
    voltage: float | None = Field(default=None, ge=0, description="simulator only")
    age_years: float | None = Field(default=None, ge=0, description="simulator only")
    sampling_interval_min: float = Field(gt=0)
    on_invalid: Literal["fail", "quarantine"] = "quarantine"
    source: SourceSpec = SourceSpec()
    sensors: list[SensorSpec] = Field(min_length=1)
    failure_modes: dict[str, FailureModeSpec] = Field(default_factory=dict)
    forecast_sensors: list[str] = Field(default_factory=list)
    model_overrides: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="family -> fleet-wide parameters of that family set for this machine only "
        "(e.g. {classification: {xgboost: {max_depth: 4}}}); merged over the fleet's, key by key",
    )

    @model_validator(mode="after")
    def _check_references(self) -> MachineSpec:
        if not MACHINE_ID_PATTERN.match(self.machine_id):
            raise ValueError(
                f"machine_id {self.machine_id!r} must be lower-case letters, digits and underscores"
            )
        names = [s.name for s in self.sensors]
        if self.source.type == "synthetic":
            missing = [f for f in SIMULATOR_FIELDS if getattr(self, f) is None] + [
                f"sensors[{s.name}].{f}"
                for s in self.sensors
                for f in ("nominal", "noise")
                if getattr(s, f) is None
            ]
            if missing:
                raise ValueError(
                    f"machine {self.machine_id}: the simulator needs {missing} "
                    "(optional only for file sources)"
                )
        if len(set(names)) != len(names):
            raise ValueError(f"machine {self.machine_id}: duplicate sensor names in {names}")
        for mode, spec in self.failure_modes.items():
            unknown = sorted(set(spec.signature) - set(names))
            if unknown:
                raise ValueError(
                    f"machine {self.machine_id}: failure mode {mode} names unknown sensors {unknown}"
                )
        unknown = sorted(set(self.forecast_sensors) - set(names))
        if unknown:
            raise ValueError(f"machine {self.machine_id}: unknown forecast_sensors {unknown}")
        unknown = sorted(set(self.model_overrides) - set(FAMILIES))
        if unknown:
            raise ValueError(
                f"machine {self.machine_id}: model_overrides names unknown families {unknown}; "
                f"defined: {', '.join(FAMILIES)}"
            )
        return self

    @property
    def sensor_names(self) -> list[str]:
        """Sensor column names, in config order."""
        return [s.name for s in self.sensors]

    @property
    def rows_per_hour(self) -> float:
        """Readings per hour at the machine's sampling interval."""
        return 60.0 / self.sampling_interval_min


def parse_machine(raw: dict[str, Any] | MachineSpec) -> MachineSpec:
    """Validate a machine's ``machine:`` parameters block into a :class:`MachineSpec`."""
    if isinstance(raw, MachineSpec):
        return raw
    return MachineSpec.model_validate(raw)


def machines_in_parameters(parameters: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every machine defined in a parameters dict: ``{machine_id: machine block}``."""
    machines = {}
    for key, value in parameters.items():
        if isinstance(value, dict) and isinstance(value.get("machine"), dict):
            block = value["machine"]
            if block.get("machine_id", key) != key:
                raise ValueError(
                    f"parameters key {key!r} holds machine_id {block.get('machine_id')!r}: "
                    "they must match"
                )
            machines[key] = block
    return machines


def priority_machines(parameters: dict[str, Any]) -> list[str]:
    """The machines of the default run, checked against the defined machines."""
    defined = machines_in_parameters(parameters)
    priority = list(parameters.get("fleet", {}).get("priority_machines", []))
    for machine_id in priority:
        require_machine(machine_id, defined)
    return priority


def require_machine(machine_id: str, defined: dict[str, Any]) -> None:
    """Raise a clear error if ``machine_id`` is not defined in config."""
    if machine_id not in defined:
        raise UnknownMachineError(
            f"Unknown machine id {machine_id!r}. Defined machines: {', '.join(sorted(defined))}. "
            "Add conf/base/parameters/machines/<machine_id>.yml to define a new one."
        )


def merge_overrides(fleet: Any, overrides: Any) -> Any:
    """``fleet`` with ``overrides`` merged in key by key (nested dicts merged, other values
    replaced); neither input is changed."""
    if not (isinstance(fleet, dict) and isinstance(overrides, dict)):
        return overrides
    out = dict(fleet)
    for key, value in overrides.items():
        out[key] = merge_overrides(fleet[key], value) if key in fleet else value
    return out


def family_parameters(
    parameters: dict[str, Any], machine: dict[str, Any], family: str
) -> dict[str, Any]:
    """A family's parameters for one machine: the fleet-wide ``parameters[family]`` with the
    machine's ``model_overrides[family]`` merged in."""
    overrides = (machine.get("model_overrides") or {}).get(family)
    fleet = parameters.get(family) or {}
    return merge_overrides(fleet, overrides) if overrides else fleet


def load_project_parameters(env: str | None = None, conf_source: Path | None = None) -> dict:
    """Load the project's parameters (base merged with ``env``) outside a Kedro session.

    ``register_pipelines()`` receives no config, so it reads the machine list through here.
    """
    from kedro.framework.project import settings  # noqa: PLC0415

    from pdm_kedro.paths import project_root  # noqa: PLC0415

    source = conf_source or (project_root() / settings.CONF_SOURCE)
    loader = settings.CONFIG_LOADER_CLASS(
        conf_source=str(source),
        env=env or os.environ.get("KEDRO_ENV"),
        **settings.CONFIG_LOADER_ARGS,
    )
    return loader["parameters"]
