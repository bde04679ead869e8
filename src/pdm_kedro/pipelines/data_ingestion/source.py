"""Typed configuration of a file source: which files, which columns, how to split.

A machine with ``source: {type: file, ...}`` in its config gets its raw splits from the user's files
through the ``data_ingestion`` pipeline instead of the simulator. ``fleet.SourceSpec`` accepts the
extra keys; this module validates them.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from pdm_kedro import contract as c

FILE_ROLES = ("data", "train", "val", "test", "test_final_rul")


class ColumnMap(BaseModel):
    """How the user's columns map onto the raw data contract."""

    model_config = ConfigDict(extra="forbid")

    time: str | None = Field(
        default=None, description="column holding the time (datetime) or the cycle number"
    )
    time_kind: Literal["datetime", "cycle", "none"] = Field(
        default="datetime",
        description="datetime: dates; cycle: cycle numbers (needs cycle_minutes); none: rows "
        "without time order (snapshots: one episode per row)",
    )
    episode: str | None = Field(
        default=None,
        description="column with the episode / unit id; None: one episode per file "
        "(or, without time, one per row)",
    )
    regime: str | None = Field(
        default=None,
        description="column with the operating regime / condition label (a text or a code)",
    )
    default_regime: str = Field(
        default="single", description="regime label of every row when there is no regime column"
    )
    sensors: dict[str, str] = Field(
        default_factory=dict, description="sensor name -> source column (default: same name)"
    )
    labels: dict[str, str] = Field(
        default_factory=dict,
        description="contract label (rul, failure_within_horizon, anomaly) -> source column; "
        "a plain failure / machine-failed column (0/1) maps to failure_within_horizon",
    )
    categorical: list[str] = Field(
        default_factory=list,
        description="text (or code) columns that enter the models as categorical features: "
        "one 0/1 column per level seen in train (time_kind: none only)",
    )

    @model_validator(mode="after")
    def _check(self) -> ColumnMap:
        unknown = sorted(set(self.labels) - set(c.LABEL_COLUMNS))
        if unknown:
            raise ValueError(f"columns.labels: unknown labels {unknown}; use {c.LABEL_COLUMNS}")
        if self.time_kind != "none" and self.time is None:
            raise ValueError(f"columns.time is required when time_kind is {self.time_kind!r}")
        if self.categorical and self.time_kind != "none":
            raise ValueError(
                "columns.categorical is for snapshot tables (time_kind: none); with a time "
                "order, give the operating regime as columns.regime"
            )
        clash = sorted(set(self.categorical) & ({self.regime} | set(self.sensors.values())))
        if clash:
            raise ValueError(f"columns.categorical {clash} are also used as regime or sensor")
        return self


class SplitSpec(BaseModel):
    """How the readings become train / val / test.

    - ``episode``: the ``data`` files' episodes in time order by the fleet's ``splits`` fractions;
    - ``time``: the first ``train_rows`` rows of every episode train, the rest test; val from the
      ``val`` files (or the next ``val_rows`` rows of every episode);
    - ``files``: the ``train`` and ``test`` files as given; val is ``val_fraction`` of the
      training episodes (drawn with ``seed``) unless ``val`` files are given;
    - ``random``: rows (independent snapshots) drawn into the splits with ``seed``, in the
      source's own ``fractions`` (default: the fleet's ``splits``), stratified on the label
      ``stratify`` when given (every split keeps the label's rate).
    """

    model_config = ConfigDict(extra="forbid")

    method: Literal["episode", "time", "files", "random"] = Field(
        description="episode | time (each file/episode: leading train_rows train, the rest "
        "test) | files | random"
    )
    train_rows: int | None = Field(
        default=None, gt=0, description="time split: leading rows of each episode that train"
    )
    val_rows: int | None = Field(
        default=None, gt=0, description="time split without val files: the next rows, val"
    )
    val_fraction: float = Field(
        default=0.2, gt=0, lt=1, description="files split: share of training episodes for val"
    )
    seed: int = Field(default=42, description="seed of every random draw of the split")
    fractions: dict[str, float] | None = Field(
        default=None,
        description="random split: this source's train / val / test fractions (sum 1); "
        "default: the fleet's splits",
    )
    stratify: str | None = Field(
        default=None,
        description="random split: the label each split keeps the rate of "
        "(e.g. failure_within_horizon)",
    )

    @model_validator(mode="after")
    def _check(self) -> SplitSpec:
        if self.fractions is not None:
            if set(self.fractions) != set(c.SPLITS):
                raise ValueError(
                    f"split.fractions needs exactly {list(c.SPLITS)}, got {sorted(self.fractions)}"
                )
            if any(v <= 0 for v in self.fractions.values()):
                raise ValueError(f"split.fractions must be positive, got {self.fractions}")
            if abs(sum(self.fractions.values()) - 1.0) > 1e-6:
                raise ValueError(f"split.fractions must sum to 1, got {self.fractions}")
        if self.stratify is not None and self.stratify not in c.LABEL_COLUMNS:
            raise ValueError(
                f"split.stratify: unknown label {self.stratify!r}; use {list(c.LABEL_COLUMNS)}"
            )
        if self.method != "random" and (self.fractions is not None or self.stratify):
            raise ValueError("split.fractions and split.stratify apply to method 'random' only")
        return self


class ProtocolSpec(BaseModel):
    """How a source's test split is scored: the headline figures of ``metrics.json``, the model
    card and ``fleet_metrics.csv``.

    - ``rul: last_cycle``: run-to-failure units whose test histories are cut short are scored
      once each, at their last observed row, against the (capped) truth (the C-MAPSS protocol);
      the all-rows figures stay in ``metrics.json`` as ``all_rows_metrics``.
    - ``rul: all_rows``: every test row is scored (the simulator's default).
    """

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, description="the protocol's name, shown in reports")
    rul: Literal["all_rows", "last_cycle"] = Field(
        default="all_rows", description="RUL headline: every test row, or each unit's last row"
    )
    anchors: dict[str, dict[str, dict[str, float]]] = Field(
        default_factory=dict,
        description="published figures under the same protocol, family -> metric -> "
        "{method: value}; shown beside ours by benchmarks/bench_real_data.py",
    )


class OperatingConditionSpec(BaseModel):
    """The source's operating conditions (regimes), and whether sensors are scaled per condition.

    - ``settings`` given: the condition of each row is derived from these operating-setting
      columns by k-means (``n_conditions`` clusters, ``seed``) fitted on the train split only,
      stored in ``operating_conditions.json`` and the edge manifest, and written as the row's
      ``regime`` (``cond_0`` ...).
    - ``settings`` empty: the given ``columns.regime`` (or the simulator's regime) is the condition.
    - ``normalise_sensors``: every sensor becomes a z-score with the mean and standard deviation of
      its condition, fitted on train (C-MAPSS FD002 / FD004: six conditions).
    """

    model_config = ConfigDict(extra="forbid")

    settings: list[str] = Field(
        default_factory=list, description="operating-setting columns to derive conditions from"
    )
    n_conditions: int = Field(default=6, ge=1, description="k-means clusters of the settings")
    seed: int = Field(default=42, description="seed of the k-means initialisation")
    normalise_sensors: bool = Field(
        default=True, description="scale each sensor per condition (fitted on train)"
    )


class FileSourceSpec(BaseModel):
    """A machine's ``source:`` block for ``type: file``."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["file"] = Field(description="file: the machine's data come from files")
    files: dict[str, str] = Field(
        description="role -> partition name or glob in the machine's source_files dataset; "
        f"roles: {FILE_ROLES}"
    )
    column_names: list[str] | None = Field(
        default=None, description="column names for files without a header row"
    )
    columns: ColumnMap
    cycle_minutes: float | None = Field(
        default=None, gt=0, description="nominal duration of one cycle (time_kind: cycle)"
    )
    start: str = Field(
        default="2020-01-01T00:00:00",
        description="first timestamp when time is cycles or row order (episodes end to end)",
    )
    run_to_failure: bool = Field(
        default=False,
        description="every episode of the data/train files ends at a failure: derive RUL",
    )
    rul_cap_hours: float | None = Field(
        default=None, gt=0, description="cap of the derived / given RUL (C-MAPSS: 125)"
    )
    fill_labels: dict[str, dict[str, int]] = Field(
        default_factory=dict,
        description="role -> {label: value} for files known to be all one class "
        "(e.g. anomaly-free recordings: {val: {anomaly: 0}})",
    )
    split: SplitSpec
    protocol: ProtocolSpec = Field(default_factory=ProtocolSpec)
    operating_conditions: OperatingConditionSpec | None = None
    families: list[Literal["classification", "regression", "anomaly", "forecasting"]] | None = (
        Field(default=None, description="families to train (default: every one the data support)")
    )
    family_notes: dict[str, str] = Field(
        default_factory=dict,
        description="family -> why it is not trained although the data would support it",
    )

    @model_validator(mode="after")
    def _check(self) -> FileSourceSpec:
        unknown = sorted(set(self.files) - set(FILE_ROLES))
        if unknown:
            raise ValueError(f"source.files: unknown roles {unknown}; use {FILE_ROLES}")
        needed = {
            "episode": {"data"},
            "time": {"data"},
            "files": {"train", "test"},
            "random": {"data"},
        }[self.split.method]
        missing = sorted(needed - set(self.files))
        if missing:
            raise ValueError(f"split method {self.split.method!r} needs source.files {missing}")
        if self.split.method == "time" and self.split.train_rows is None:
            raise ValueError("split method 'time' needs split.train_rows")
        conditions = self.operating_conditions
        if conditions is not None and not conditions.settings and self.columns.regime is None:
            raise ValueError(
                "operating_conditions needs settings (columns to cluster) or columns.regime"
            )
        if self.columns.time_kind == "cycle" and self.cycle_minutes is None:
            raise ValueError("time_kind 'cycle' needs source.cycle_minutes")
        return self


def parse_file_source(source: dict | FileSourceSpec) -> FileSourceSpec:
    """Validate a machine's ``source`` block (``type: file``)."""
    if isinstance(source, FileSourceSpec):
        return source
    return FileSourceSpec.model_validate(dict(source))


def _type_text(annotation: Any) -> str:
    if isinstance(annotation, type) and not getattr(annotation, "__args__", None):
        return annotation.__name__
    text = str(annotation).replace("typing.", "").replace("NoneType", "None")
    text = text.replace("__main__.", "")
    for prefix in ("<class '", "'>"):
        text = text.replace(prefix, "")
    return text.replace("pdm_kedro.pipelines.data_ingestion.source.", "")


def source_key_rows(model: type[BaseModel] = None, prefix: str = "source") -> list[list[str]]:  # type: ignore[assignment]
    """``[key, type, default, description]`` of every key of a file source, nested models
    expanded (``source.split.method`` ...): the table in docs/bring_your_own_data.md."""
    model = model or FileSourceSpec
    rows = []
    for name, field in model.model_fields.items():
        key = f"{prefix}.{name}"
        annotation = field.annotation
        nested = [
            t
            for t in (getattr(annotation, "__args__", None) or (annotation,))
            if isinstance(t, type) and issubclass(t, BaseModel)
        ]
        if field.is_required():
            default = "required"
        elif field.default_factory is not None:
            made = field.default_factory()
            default = repr(made.model_dump() if isinstance(made, BaseModel) else made)
        else:
            default = repr(field.default)
        doc = field.description or ""
        if nested and not doc:
            doc = (nested[0].__doc__ or "").strip().split("\n")[0]
        rows.append([f"`{key}`", f"`{_type_text(annotation)}`", f"`{default}`", doc])
        for sub in nested:
            rows += source_key_rows(sub, key)
    return rows


def source_key_table() -> str:
    """The markdown table of every file-source key (generated from the config model)."""
    lines = ["| key | type | default | meaning |", "|---|---|---|---|"]
    lines += [
        "| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |"
        for row in source_key_rows()
    ]
    return "\n".join(lines)


if __name__ == "__main__":  # python -m pdm_kedro.pipelines.data_ingestion.source
    print(source_key_table())
