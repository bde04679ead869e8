"""Pydantic models of every request and response (they are the OpenAPI schema at ``/docs``)."""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

Reading = Annotated[float, Field(allow_inf_nan=False, strict=True)]
Cell = Reading | Annotated[str, Field(strict=True, max_length=64)] | None
PARAM_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
READINGS_EXAMPLE = {
    "timestamp": ["2026-01-05T00:00:00", "2026-01-05T00:30:00", "..."],
    "regime": ["nominal", "nominal", "..."],
    "winding_temperature": [83.1, 83.4, "..."],
}


class Family(StrEnum):
    """Model families (the path segment of the per-family endpoints)."""

    classification = "classification"
    regression = "regression"
    anomaly = "anomaly"
    forecasting = "forecasting"


class PredictRequest(BaseModel):
    """Recent raw readings of one running episode, oldest first, as columns.

    ``readings`` maps ``timestamp`` (ISO 8601 strings), ``regime`` (regime names) and every sensor
    of the machine (numbers; ``null`` is a missing reading) to equally long lists. ``GET
    /v1/machines`` lists each machine's sensors and the history it needs.
    """

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": []})
    readings: dict[Annotated[str, Field(max_length=128)], list[Cell]] = Field(
        ..., description="column -> values, oldest first", examples=[READINGS_EXAMPLE]
    )
    all_rows: bool = Field(False, description="answer for every row, not only the last")
    from_episode_start: bool = Field(
        False, description="the first row is the episode's first reading (no minimum history)"
    )


class BatchItem(PredictRequest):
    """One machine's readings inside a batch."""

    machine_id: str = Field(..., max_length=128)
    families: list[Family] | None = Field(None, description="default: every family served")


class BatchRequest(BaseModel):
    """Many machines (or many windows of one machine) scored in one request."""

    model_config = ConfigDict(extra="forbid")
    items: list[BatchItem] = Field(..., min_length=1)


class TrainingRequest(BaseModel):
    """Options of a training job (all optional)."""

    model_config = ConfigDict(extra="forbid")
    params: dict[str, float | int | str] = Field(
        default_factory=dict,
        description="runtime parameters passed to `kedro run --params` (e.g. simulation.seed)",
        max_length=20,
    )

    @field_validator("params")
    @classmethod
    def _names(cls, params: dict[str, Any]) -> dict[str, Any]:
        for name, value in params.items():
            if not PARAM_NAME.match(name):
                raise ValueError(f"parameter name {name!r} is not a dotted Kedro parameter name")
            if isinstance(value, str) and (len(value) > 200 or any(c in value for c in ",=\n")):
                raise ValueError(f"parameter {name!r}: value must not contain ',', '=' or newlines")
        return params


# -- responses ---------------------------------------------------------------------------------
class ErrorBody(BaseModel):
    """What every 4xx answer carries."""

    status: int
    code: str
    message: str
    details: list[dict[str, Any]] | None = None
    known_machines: list[str] | None = None


class ErrorResponse(BaseModel):
    """``{"error": {...}}``."""

    error: ErrorBody


class FamilyVersion(BaseModel):
    """The model a family is served from."""

    family: Family
    registered_model: str
    registry_version: str | None = Field(None, description="MLflow registry version (champion)")
    onnx_version: str = Field(..., description="short sha256 of the ONNX file")
    served_version: str = Field(..., description="registry version when known, else onnx_version")


class Failure(BaseModel):
    probability: float | list[float]
    decision: bool | list[bool]
    threshold: float
    horizon_hours: float


class Rul(BaseModel):
    value: float | list[float] = Field(
        ...,
        description="remaining useful life (hours); while the failure alarm is on at most "
        "cap_at_alarm_hours",
    )
    cap_hours: float
    cap_at_alarm_hours: float | None = Field(
        None,
        description="the most the RUL answer says while the failure alarm is on (null: no rule)",
    )
    model_value: float | list[float] | None = Field(
        None, description="the RUL model's own value, before the alarm rule"
    )
    capped_by_alarm: bool | list[bool] | None = Field(
        None,
        description="the alarm capped the value; null: not checked (no failure answer requested)",
    )


class Anomaly(BaseModel):
    score: float | list[float]
    flag: bool | list[bool]
    threshold: float
    detector: str


class SensorForecast(BaseModel):
    unit: str | None = None
    forecast: list[float | None]
    lower: list[float | None]
    upper: list[float | None]


class Forecast(BaseModel):
    origin: str
    hours: list[str]
    sensors: dict[str, SensorForecast]


class _Factor(BaseModel):
    feature: str
    sensor: str = Field(..., description="the sensor (or sensor kind for an aggregate)")
    window: str | None = Field(..., description="feature window, e.g. 48h (null: none)")
    statistic: str
    unit: str
    value: float | None = Field(..., description="the input's value (null when missing)")


class TreeFactor(_Factor):
    """One model input's TreeSHAP contribution, in words a person reads."""

    contribution: float = Field(..., description="in the family's output space")
    text: str


class DeviationFactor(_Factor):
    """One anomaly-detector input's standardised deviation from the training reference."""

    deviation: float = Field(..., description="(value - training mean) / training sd")
    text: str


class TreeExplanation(BaseModel):
    """Why an XGBoost family answered what it did (the last row): exact TreeSHAP."""

    output_space: str = Field(..., description="log-odds (failure) or hours (RUL)")
    base_value: float = Field(..., description="XGBoost's bias")
    raw_prediction: float = Field(..., description="base value + contributions")
    top_factors: list[TreeFactor]
    per_sensor: dict[str, float] = Field(..., description="contributions summed per sensor")


class DeviationExplanation(BaseModel):
    """Why the anomaly detector answered what it did: deviations, not a SHAP sum."""

    output_space: str
    top_factors: list[DeviationFactor]
    per_sensor: dict[str, float] = Field(..., description="largest |deviation| per sensor")


class ModeDiagnosis(BaseModel):
    mode: str
    confidence: float
    description: str | None = None
    action: str | None = None
    part: str | None = None
    repair_time_h: float | None = None


class Diagnosis(BaseModel):
    """The likely developing failure modes, most likely first, with the configured action."""

    method: str
    modes: list[ModeDiagnosis]


class Explanation(BaseModel):
    """``?explain=N``: the last row's explanation per answered family, and the diagnosis."""

    top_n: int
    failure: TreeExplanation | None = None
    rul_hours: TreeExplanation | None = None
    anomaly: DeviationExplanation | None = None
    diagnosis: Diagnosis | None = None


class Prediction(BaseModel):
    """The edge runtime's answer, plus the versions that produced it."""

    machine_id: str
    rows: int
    timestamp: str | list[str]
    failure: Failure | None = None
    rul_hours: Rul | None = None
    anomaly: Anomaly | None = None
    forecast: Forecast | None = None
    warnings: list[str]
    explanation: Explanation | None = Field(None, description="with ?explain=N only")
    models: dict[str, FamilyVersion]
    bundle_version: str


class BatchResult(BaseModel):
    index: int
    machine_id: str
    status: int
    prediction: Prediction | None = None
    error: ErrorBody | None = None


class BatchResponse(BaseModel):
    results: list[BatchResult]
    errors: int


class MetricRow(BaseModel):
    metric: str
    value: float | None
    baseline: float | None = None
    baseline_name: str | None = None
    beats_baseline: bool | None = None


class FamilySummary(BaseModel):
    version: FamilyVersion
    metrics: list[MetricRow]
    loses_to_baseline: list[str] = Field(
        default_factory=list, description="headline metrics where the baseline is better"
    )


class SensorInfo(BaseModel):
    name: str
    unit: str


class MachineInfo(BaseModel):
    machine_id: str
    families: list[Family]
    bundle_version: str
    trained_at: str
    loaded_at: str
    sampling_interval_min: float
    min_history_rows: int
    min_history_hours: float
    regimes: list[str]
    sensors: list[SensorInfo]
    models: dict[str, FamilySummary]


class MachinesResponse(BaseModel):
    machines: list[MachineInfo]


class Health(BaseModel):
    status: Literal["ok", "loading", "not ready"]
    machines: int = 0
    models: int = 0
    failures: dict[str, str] = Field(default_factory=dict)


class JobAccepted(BaseModel):
    job_id: str
    machine_id: str
    state: str
    status_url: str


class JobStatus(BaseModel):
    job_id: str
    machine_id: str
    state: Literal["queued", "running", "succeeded", "failed"]
    created_at: str
    started_at: str | None = None
    finished_at: str | None = None
    command: list[str]
    progress: dict[str, Any]
    log_tail: list[str]
    versions_before: dict[str, Any] | None = None
    versions_after: dict[str, Any] | None = None
    promotion: list[dict[str, Any]] = Field(default_factory=list)
    served_bundle_changed: bool | None = None
    error: str | None = None


class VersionPerformance(BaseModel):
    version: str
    aliases: list[str]
    created_at: str
    run_id: str | None = None
    champion_decision: str | None = None
    score_name: str | None = None
    score: float | None = None
    metrics: list[MetricRow]


class FamilyPerformance(BaseModel):
    registered_model: str
    served_version: str
    versions: list[VersionPerformance]


class PerformanceResponse(BaseModel):
    machine_id: str
    tracking_uri: str
    families: dict[str, FamilyPerformance]
