"""A machine's raw splits from the user's own files: map columns, derive labels, split.

The files arrive through the ``<machine>.source_files`` catalog dataset (a ``PartitionedDataset``:
partition name -> loader); nodes never open files themselves. The output meets the same raw data
contract as the simulator's (``docs/data_contract.md``) and goes through the same validation.
"""

from __future__ import annotations

import fnmatch
import logging
import re
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from pdm_kedro import contract as c
from pdm_kedro.contract import FAILURE_MODE, HIDDEN_COLUMNS
from pdm_kedro.core import operating_conditions as oc
from pdm_kedro.fleet import parse_machine
from pdm_kedro.splits import split_by_episode

from .source import FileSourceSpec, parse_file_source

logger = logging.getLogger(__name__)

SOURCE_FILE = "source_file"  # extra raw column (ignored by the contract): where a row came from
SOURCE_EPISODE = "source_episode"  # the episode / unit id as written in the user's file
ROLE = "source_role"
READING_ROLES = ("data", "train", "val", "test")
MAX_ROWS_QUOTED = 5
CATEGORY_PREFIX = "category__"
MISSING_CATEGORY = "<missing>"


def setting_column(name: str) -> str:
    """The raw column carrying operating setting ``name`` (kept beside the contract's columns)."""
    return f"setting__{name}"


def category_column(name: str) -> str:
    """The raw column carrying categorical column ``name`` as text (``columns.categorical``)."""
    return f"{CATEGORY_PREFIX}{name}"


class DataSourceError(ValueError):
    """A user's file that cannot be mapped onto the data contract: names file, column and rows."""


def _natural_key(name: str) -> list:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def match_partitions(available: list[str], pattern: str) -> list[str]:
    """Partition names matching ``pattern`` (exact name, file stem or glob), in natural order."""
    hits = [
        name
        for name in available
        if fnmatch.fnmatch(name, pattern) or name.rsplit(".", 1)[0] == pattern
    ]
    return sorted(set(hits), key=_natural_key)


def _load(part: Callable[[], pd.DataFrame] | pd.DataFrame) -> pd.DataFrame:
    return part() if callable(part) else part


def _bad_rows(original: pd.Series, parsed: pd.Series) -> list[int]:
    """Data rows (1-based, header not counted) whose value is present but did not parse."""
    return [
        int(i) + 1 for i in np.flatnonzero(parsed.isna().to_numpy() & original.notna().to_numpy())
    ]


def _fail(file: str, column: str, what: str, rows: list[int], values: pd.Series) -> None:
    shown = [str(v) for v in values.iloc[[r - 1 for r in rows[:MAX_ROWS_QUOTED]]].tolist()]
    raise DataSourceError(
        f"File {file!r}, column {column!r}: {what} in {len(rows)} rows, e.g. data rows "
        f"{rows[:MAX_ROWS_QUOTED]} (1-based, header not counted) with values {shown}"
    )


def _numeric(frame: pd.DataFrame, column: str, file: str, what: str) -> pd.Series:
    values = frame[column]
    parsed = pd.to_numeric(values, errors="coerce")
    bad = _bad_rows(values, parsed)
    if bad:
        _fail(file, column, f"{what}: values that are not numbers", bad, values)
    return parsed.astype(np.float64)


def _require_columns(frame: pd.DataFrame, wanted: dict[str, str], file: str) -> None:
    missing = {use: col for use, col in wanted.items() if col not in frame.columns}
    if missing:
        listed = ", ".join(f"{col!r} (for {use})" for use, col in missing.items())
        raise DataSourceError(
            f"File {file!r}: missing column(s) {listed}; the file has columns "
            f"{[str(col) for col in frame.columns]}. Fix the file or the machine's "
            "source.columns / source.column_names."
        )


def _standardise_file(
    raw: pd.DataFrame, file: str, role: str, source: FileSourceSpec, sensors: list[str]
) -> pd.DataFrame:
    """One file's rows with contract names: time, episode, sensors, labels (not yet derived)."""
    frame = raw.copy()
    if source.column_names is not None:
        if frame.shape[1] < len(source.column_names):
            raise DataSourceError(
                f"File {file!r}: {frame.shape[1]} columns, but source.column_names lists "
                f"{len(source.column_names)}"
            )
        frame = frame.iloc[:, : len(source.column_names)]
        frame.columns = source.column_names
    cols = source.columns
    sensor_cols = {name: cols.sensors.get(name, name) for name in sensors}
    wanted = {f"sensor {name}": col for name, col in sensor_cols.items()}
    if cols.time is not None:
        wanted["time"] = cols.time
    if cols.episode is not None:
        wanted["episode"] = cols.episode
    if cols.regime is not None:
        wanted["regime"] = cols.regime
    settings = source.operating_conditions.settings if source.operating_conditions else []
    for column in settings:
        wanted[f"operating setting {column}"] = column
    for column in cols.categorical:
        wanted[f"categorical {column}"] = column
    present_labels = {lab: col for lab, col in cols.labels.items() if col in frame.columns}
    _require_columns(frame, wanted, file)

    out = pd.DataFrame(index=frame.index)
    if cols.time_kind == "datetime":
        parsed = pd.to_datetime(frame[cols.time], errors="coerce")
        bad = _bad_rows(frame[cols.time], parsed)
        if bad:
            _fail(file, cols.time, "time: values that are not dates", bad, frame[cols.time])
        out["_time"] = parsed.astype("datetime64[ns]")
    elif cols.time_kind == "cycle":
        out["_time"] = _numeric(frame, cols.time, file, "cycle")
    if cols.episode is not None:
        out[SOURCE_EPISODE] = _numeric(frame, cols.episode, file, "episode")
    # one regime when the data name none: the features then carry a constant regime_code, as the
    # edge feature definition expects
    out[c.REGIME] = frame[cols.regime].astype(str) if cols.regime else cols.default_regime
    for name, col in sensor_cols.items():
        out[name] = _numeric(frame, col, file, f"sensor {name}")
    for column in settings:
        out[setting_column(column)] = _numeric(frame, column, file, f"operating setting {column}")
    for column in cols.categorical:  # text as given; a missing value is a level of its own
        text = frame[column].astype("string").str.strip()
        out[category_column(column)] = text.fillna(MISSING_CATEGORY).astype(str).to_numpy()
    for label, col in present_labels.items():
        out[label] = _numeric(frame, col, file, f"label {label}")
    for label, value in source.fill_labels.get(role, {}).items():
        out[label] = float(value)
    out[SOURCE_FILE] = file
    out[ROLE] = role
    return out.reset_index(drop=True)


def _assign_episodes(frames: list[pd.DataFrame], source: FileSourceSpec) -> list[pd.DataFrame]:
    """Integer ``episode_id`` per row, unique over every file.

    With an episode column, ids are kept unless an earlier file used them (then the file's ids are
    shifted by a multiple of 1000: C-MAPSS test unit 7 becomes 1007); without one, each file is an
    episode (or, with no time order, each row).
    """
    used: set[int] = set()
    next_id = 0
    out = []
    for original in frames:
        frame = original.copy()
        if source.columns.episode is not None:
            ids = frame[SOURCE_EPISODE].astype(np.int64)
            frame[SOURCE_EPISODE] = ids
            offset = 0
            while used & set((ids + offset).unique().tolist()):
                offset += 1000
            frame[c.EPISODE] = (ids + offset).astype(np.int64)
        elif source.columns.time_kind == "none":
            frame[c.EPISODE] = np.arange(next_id, next_id + len(frame), dtype=np.int64)
            frame[SOURCE_EPISODE] = frame[c.EPISODE]
        else:
            frame[c.EPISODE] = np.int64(next_id)
            frame[SOURCE_EPISODE] = np.int64(next_id)
        used |= set(frame[c.EPISODE].unique().tolist())
        next_id = max(used) + 1 if used else 0
        out.append(frame)
    return out


def _assign_timestamps(
    readings: pd.DataFrame, source: FileSourceSpec, sampling_interval_min: float
) -> pd.DataFrame:
    """``timestamp`` (datetime64) from dates, from cycles (nominal cycle duration), or from order.

    Cycle-indexed episodes are laid end to end (one cycle apart) from ``source.start``, so time
    increases over the whole history as it does for simulated machines.
    """
    out = readings.copy()
    start = pd.Timestamp(source.start)
    kind = source.columns.time_kind
    if kind == "datetime":
        out[c.TIMESTAMP] = out.pop("_time")
        return out
    if kind == "cycle":
        cycles = out.pop("_time")
        first = cycles.groupby(out[c.EPISODE], sort=False).transform("min")
        span = cycles.groupby(out[c.EPISODE], sort=False).agg(lambda s: s.max() - s.min() + 2)
        offsets = span.cumsum() - span  # episodes in order of appearance
        elapsed = (cycles - first) + out[c.EPISODE].map(offsets)
        minutes = elapsed.to_numpy(dtype=np.float64) * float(source.cycle_minutes)
        out[c.TIMESTAMP] = (start + pd.to_timedelta(minutes, unit="min")).astype("datetime64[ns]")
        return out
    minutes = np.arange(len(out), dtype=np.float64) * float(sampling_interval_min)
    out[c.TIMESTAMP] = (start + pd.to_timedelta(minutes, unit="min")).astype("datetime64[ns]")
    return out


def standardise_source_files(
    source_files: dict[str, Callable[[], pd.DataFrame] | pd.DataFrame], machine: dict[str, Any]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Map the user's files onto the raw data contract (names, dtypes), before labels and splits.

    Args:
        source_files: partition name -> loader (``PartitionedDataset``) or frame.
        machine: the machine's config block with a ``source: {type: file, ...}`` section.

    Returns:
        the readings of every role's files (``timestamp``, ``episode_id``, sensors, the labels
        present, ``source_file``, ``source_episode``, ``source_role``), and the final RUL table of
        the ``test_final_rul`` file (``episode_id``, ``final_rul``; empty without that file).

    Raises:
        DataSourceError: naming the file, column and rows of a value that cannot be read.
    """
    spec = parse_machine(machine)
    source = parse_file_source(spec.source.model_dump())
    available = list(source_files)
    frames = []
    for role in READING_ROLES:
        if role not in source.files:
            continue
        names = match_partitions(available, source.files[role])
        if not names:
            raise DataSourceError(
                f"Machine {spec.machine_id}: no source file matches {source.files[role]!r} "
                f"(role {role}); available: {sorted(available, key=_natural_key)[:20]}"
            )
        frames += [
            _standardise_file(_load(source_files[n]), n, role, source, spec.sensor_names)
            for n in names
        ]
    frames = _assign_episodes(frames, source)
    readings = _assign_timestamps(
        pd.concat(frames, ignore_index=True), source, spec.sampling_interval_min
    )
    final_rul = pd.DataFrame({c.EPISODE: pd.Series(dtype=np.int64), "final_rul": []})
    if "test_final_rul" in source.files:
        names = match_partitions(available, source.files["test_final_rul"])
        if len(names) != 1:
            raise DataSourceError(
                f"Machine {spec.machine_id}: test_final_rul must match one file, got {names}"
            )
        table = _load(source_files[names[0]])
        values = _numeric(table, table.columns[0], names[0], "final RUL")
        test_episodes = sorted(readings.loc[readings[ROLE] == "test", c.EPISODE].unique())
        if len(values) != len(test_episodes):
            raise DataSourceError(
                f"File {names[0]!r}: {len(values)} final RUL values for "
                f"{len(test_episodes)} test episodes"
            )
        final_rul = pd.DataFrame({c.EPISODE: test_episodes, "final_rul": values.to_numpy()})
    logger.info(
        "%s: read %d rows in %d episodes from %d files",
        spec.machine_id,
        len(readings),
        readings[c.EPISODE].nunique(),
        len(frames),
    )
    return readings, final_rul


def _time_hours(readings: pd.DataFrame) -> pd.Series:
    """Hours since the start of each row's episode."""
    first = readings.groupby(c.EPISODE)[c.TIMESTAMP].transform("min")
    return (readings[c.TIMESTAMP] - first) / pd.Timedelta(hours=1)


def derive_labels(
    readings: pd.DataFrame,
    final_rul: pd.DataFrame,
    machine: dict[str, Any],
    labels: dict[str, Any],
) -> pd.DataFrame:
    """Labels the data allow: RUL of run-to-failure episodes (capped), failure within horizon.

    - ``rul`` (hours): given as a column (in the data's time unit: hours, or cycles for
      cycle-indexed data), or, with ``run_to_failure``, the time left to the episode's last row;
      test episodes cut before failure add their final RUL from ``test_final_rul``. Capped at
      ``rul_cap_hours`` when set (C-MAPSS: 125 cycles).
    - ``failure_within_horizon``: given, or ``rul <= labels.failure_horizon_hours``.
    - ``anomaly``: only as given (or filled by ``fill_labels``); never invented.
    """
    spec = parse_machine(machine)
    source = parse_file_source(spec.source.model_dump())
    out = readings.copy()
    hours_per_unit = (
        float(source.cycle_minutes) / 60.0 if source.columns.time_kind == "cycle" else 1.0
    )
    if c.RUL in out.columns:
        out[c.RUL] = out[c.RUL] * hours_per_unit
    elif source.run_to_failure:
        elapsed = _time_hours(out)
        left = elapsed.groupby(out[c.EPISODE]).transform("max") - elapsed
        final = out[c.EPISODE].map(final_rul.set_index(c.EPISODE)["final_rul"] * hours_per_unit)
        out[c.RUL] = left + final.fillna(0.0)
    if c.RUL in out.columns and source.rul_cap_hours is not None:
        out[c.RUL] = out[c.RUL].clip(upper=float(source.rul_cap_hours))
    horizon = float(labels["failure_horizon_hours"])
    if c.FAILURE_WITHIN_HORIZON not in out.columns and c.RUL in out.columns:
        if source.rul_cap_hours is not None and source.rul_cap_hours <= horizon:
            raise ValueError(
                f"{spec.machine_id}: rul_cap_hours {source.rul_cap_hours} must exceed the "
                f"failure horizon {horizon} h, or every row would be positive"
            )
        out[c.FAILURE_WITHIN_HORIZON] = (out[c.RUL] <= horizon).astype(np.int8)
    for label in (c.FAILURE_WITHIN_HORIZON, c.ANOMALY):
        if label in out.columns and out[label].notna().all():
            out[label] = out[label].astype(np.int8)
    return out


def _split_time(
    readings: pd.DataFrame, source: FileSourceSpec
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    data = readings[readings[ROLE] == "data"]
    order = data.groupby(c.EPISODE).cumcount()
    n_train = int(source.split.train_rows)
    n_val = int(source.split.val_rows or 0) if "val" not in source.files else 0
    train = data[order < n_train]
    if "val" in source.files:
        val = readings[readings[ROLE] == "val"]
    else:
        val = data[(order >= n_train) & (order < n_train + n_val)]
    test = data[order >= n_train + n_val]
    return train, val, test


def _split_files(
    readings: pd.DataFrame, source: FileSourceSpec
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    train = readings[readings[ROLE] == "train"]
    test = readings[readings[ROLE] == "test"]
    if "val" in source.files:
        return train, readings[readings[ROLE] == "val"], test
    episodes = np.sort(train[c.EPISODE].unique())
    n_val = max(1, round(len(episodes) * source.split.val_fraction))
    rng = np.random.default_rng(source.split.seed)
    val_episodes = rng.choice(episodes, size=n_val, replace=False)
    in_val = train[c.EPISODE].isin(val_episodes)
    return train[~in_val], train[in_val], test


def stratified_assignment(strata: np.ndarray, fractions: dict[str, float], seed: int) -> np.ndarray:
    """Split index (0 train, 1 val, 2 test) of every row: within each stratum the rows are
    shuffled with ``seed`` and cut at the fractions (largest remainders), so every split keeps
    each stratum's share up to one row. One stratum for all rows is a plain seeded random split."""
    rng = np.random.default_rng(seed)
    shares = np.array([fractions[name] for name in c.SPLITS], dtype=np.float64)
    shares = shares / shares.sum()
    out = np.empty(len(strata), dtype=np.int64)
    for value in pd.unique(strata):
        rows = np.flatnonzero(strata == value)
        rows = rows[rng.permutation(len(rows))]
        exact = shares * len(rows)
        counts = np.floor(exact).astype(np.int64)
        for i in np.argsort(-(exact - counts), kind="stable")[: len(rows) - counts.sum()]:
            counts[i] += 1
        out[rows] = np.repeat(np.arange(len(c.SPLITS)), counts)
    return out


def _split_random(
    readings: pd.DataFrame, source: FileSourceSpec, splits: dict[str, float]
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    data = readings[readings[ROLE] == "data"]
    fractions = source.split.fractions or {name: float(splits[name]) for name in c.SPLITS}
    label = source.split.stratify
    if label is not None:
        if label not in data.columns or data[label].isna().any():
            raise DataSourceError(
                f"split.stratify: label {label!r} is missing from "
                f"{'the data' if label not in data.columns else 'some rows of the data'}; "
                "stratify needs it on every row"
            )
        strata = data[label].to_numpy()
    else:
        strata = np.zeros(len(data), dtype=np.int8)
    where = stratified_assignment(strata, fractions, source.split.seed)
    return data[where == 0], data[where == 1], data[where == 2]


def split_source_readings(
    readings: pd.DataFrame, machine: dict[str, Any], splits: dict[str, float]
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Raw train / val / test by the machine's ``source.split`` (see ``SplitSpec``).

    Episode and file splits never share an episode between splits; a ``time`` split cuts each
    episode (train first). ``source_role`` is dropped; ``source_file`` stays for tracing.
    """
    spec = parse_machine(machine)
    source = parse_file_source(spec.source.model_dump())
    method = source.split.method
    if method == "episode":
        parts = split_by_episode(readings[readings[ROLE] == "data"], splits)
    elif method == "time":
        parts = _split_time(readings, source)
    elif method == "files":
        parts = _split_files(readings, source)
    else:
        parts = _split_random(readings, source, splits)
    out = tuple(part.drop(columns=[ROLE]).reset_index(drop=True) for part in parts)
    for name, part in zip(c.SPLITS, out, strict=True):
        if part.empty:
            raise ValueError(
                f"{spec.machine_id}: source split {method!r} leaves {name} empty; "
                "check source.split and source.files"
            )
    logger.info(
        "%s: %s split: %s rows",
        spec.machine_id,
        method,
        "/".join(str(len(p)) for p in out),
    )
    return out  # type: ignore[return-value]


def supported_families(labelled: pd.DataFrame, machine: dict[str, Any]) -> dict[str, str]:
    """Which model families the data support: family -> "" if supported, else why not."""
    spec = parse_machine(machine)
    source = parse_file_source(spec.source.model_dump())
    timed = source.columns.time_kind != "none"

    def has(label: str) -> bool:
        return label in labelled.columns and bool(labelled[label].notna().all())

    reasons = {
        "regression": "" if has(c.RUL) else "no RUL: no rul column and not run_to_failure",
        "classification": ""
        if has(c.FAILURE_WITHIN_HORIZON)
        else "no failure_within_horizon label and no RUL to derive it from",
        "anomaly": "" if has(c.ANOMALY) else "no anomaly labels to choose a threshold and score",
        "forecasting": ""
        if timed and spec.forecast_sensors
        else ("no time order (snapshots)" if not timed else "no forecast_sensors configured"),
    }
    return reasons


def report_source(
    labelled: pd.DataFrame, final_rul: pd.DataFrame, machine: dict[str, Any]
) -> dict[str, Any]:
    """What was read, which labels were given or derived, and which families train and why.

    Raises:
        ValueError: if ``source.families`` names a family the data cannot support.
    """
    spec = parse_machine(machine)
    source = parse_file_source(spec.source.model_dump())
    reasons = supported_families(labelled, machine)
    supported = [f for f, why in reasons.items() if not why]
    trained = list(source.families) if source.families is not None else supported
    unsupported = sorted(set(trained) - set(supported))
    if unsupported:
        raise ValueError(
            f"{spec.machine_id}: source.families lists {unsupported}, which the data cannot "
            f"support: { ({f: reasons[f] for f in unsupported}) }"
        )
    given = set(source.columns.labels)
    label_origin = {}
    for label in c.LABEL_COLUMNS:
        if label not in labelled.columns:
            label_origin[label] = "absent"
        elif label in given:
            label_origin[label] = "given"
        elif any(label in fill for fill in source.fill_labels.values()):
            label_origin[label] = "filled for " + ", ".join(
                role for role, fill in source.fill_labels.items() if label in fill
            )
        else:
            label_origin[label] = "derived"
    by_role = labelled.groupby(ROLE)
    thresholds = threshold_notes(labelled, source)
    return {
        "machine_id": spec.machine_id,
        "source": "file",
        "files": sorted(labelled[SOURCE_FILE].unique().tolist(), key=_natural_key),
        "rows": {role: int(len(g)) for role, g in by_role},
        "episodes": {role: int(g[c.EPISODE].nunique()) for role, g in by_role},
        "test_final_rul_rows": int(len(final_rul)),
        "split": source.split.model_dump(),
        "labels": label_origin,
        "rul_cap_hours": source.rul_cap_hours,
        "families": {
            f: {
                "trained": f in trained,
                "supported": not why,
                "why": why
                or (
                    "data support it"
                    if f in trained
                    else source.family_notes.get(f, "not in source.families")
                ),
                **({"threshold": thresholds[f]} if f in thresholds else {}),
            }
            for f, why in reasons.items()
        },
        "protocol": source.protocol.model_dump(),
        "operating_conditions": (
            source.operating_conditions.model_dump() if source.operating_conditions else None
        ),
        **({"snapshot": snapshot_notes(source)} if source.columns.time_kind == "none" else {}),
    }


def snapshot_notes(source: FileSourceSpec) -> dict[str, Any]:
    """What a snapshot table (``time_kind: none``) gets and what it does not, for the report."""
    scaled = bool(source.operating_conditions and source.operating_conditions.normalise_sensors)
    categorical = [*source.columns.categorical, *([c.REGIME] if source.columns.regime else [])]
    return {
        "features": "each row's readings"
        + (", their z-scores per operating condition" if scaled else "")
        + (f", one 0/1 column per train level of {categorical}" if categorical else "")
        + "; no window features (rows have no time order); columns constant on train dropped",
        "split": (
            f"random, fractions {source.split.fractions or 'of the fleet (splits)'}, "
            f"stratified on {source.split.stratify}"
            if source.split.stratify
            else f"{source.split.method}, not stratified"
        ),
        "not_built": {
            "edge": "no edge bundle or ONNX export: the edge runtime computes window features "
            "from a history of readings, which snapshot rows do not have (the classifier on "
            "snapshot features itself converts to ONNX with parity on every test row: "
            "tests/pipelines/classification/test_snapshot_onnx.py)",
            "diagnosis": "failure-mode diagnosis compares window statistics (long-window mean "
            "and std) with healthy ones: no windows in snapshot rows",
            "alarm_events": "no time to failure: the classification metrics have no event rows",
        },
    }


def no_hidden_state(raw_train: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """A user's own data has no simulator hidden state: empty ``hidden_state_<split>`` frames
    (the columns of the simulator's) so the ceiling nodes report "no ceiling" for this machine."""
    del raw_train  # ordering only: the frames are written with the raw splits
    empty = pd.DataFrame({name: pd.Series(dtype="float64") for name in HIDDEN_COLUMNS})
    empty[c.TIMESTAMP] = pd.Series(dtype="datetime64[ns]")
    empty[c.EPISODE] = pd.Series(dtype="int64")
    empty[FAILURE_MODE] = pd.Series(dtype="object")
    return empty, empty.copy(), empty.copy()


def threshold_notes(labelled: pd.DataFrame, source: FileSourceSpec) -> dict[str, str]:
    """Whether a family can choose its decision threshold from the labels its val split holds.

    The anomaly family's best-F1 threshold needs anomalous and normal rows in val; without them
    only a normal-only rule (``anomaly.threshold.rule: normal_far``, or ``auto``) can set it.
    """
    notes: dict[str, str] = {}
    if c.ANOMALY not in labelled.columns:
        return notes
    if "val" in source.files:
        y = labelled.loc[labelled[ROLE] == "val", c.ANOMALY].to_numpy()
        where = "the val files"
    else:
        return {
            "anomaly": "val is cut from the data files: see the anomaly metrics' threshold_rule"
        }
    anomalous, normal = int(np.sum(y == 1)), int(np.sum(y == 0))
    if anomalous and normal:
        notes["anomaly"] = f"chosen from the data: {where} hold {anomalous} anomalous rows"
    else:
        notes["anomaly"] = (
            f"cannot be chosen by F1 from the data: {where} hold {anomalous} anomalous and "
            f"{normal} normal rows; only a normal-only rule can set it "
            "(anomaly.threshold.rule: normal_far or auto, target_far on val's normal rows)"
        )
    return notes


def fit_operating_conditions(train: pd.DataFrame, machine: dict[str, Any]) -> dict[str, Any]:
    """The operating-condition model of the machine, fitted on the train split only.

    With ``source.operating_conditions.settings``: k-means centres of those settings
    (:func:`pdm_kedro.core.operating_conditions.fit_conditions`). Without: the given regime
    column's values. ``{"enabled": False}`` when the source declares no operating conditions.
    """
    spec = parse_machine(machine)
    source = parse_file_source(spec.source.model_dump())
    declared = source.operating_conditions
    if declared is None:
        return {"enabled": False}
    out: dict[str, Any] = {"enabled": True, **declared.model_dump()}
    if declared.settings:
        columns = [setting_column(s) for s in declared.settings]
        values = train[columns].to_numpy(dtype=np.float64)
        finite = np.isfinite(values).all(axis=1)
        out["clustering"] = oc.fit_conditions(
            values[finite], declared.settings, declared.n_conditions, declared.seed
        )
        out["fitted_on"] = {"split": "train", "rows": int(finite.sum())}
        logger.info(
            "%s: %d operating conditions from %s (train rows per condition %s)",
            spec.machine_id,
            declared.n_conditions,
            declared.settings,
            out["clustering"]["train_rows_per_condition"],
        )
    else:
        out["clustering"] = None
        out["fitted_on"] = {"split": "train", "rows": int(len(train))}
        out["regimes"] = sorted(train[c.REGIME].astype(str).unique().tolist())
    return out


def label_operating_conditions(readings: pd.DataFrame, conditions: dict[str, Any]) -> pd.DataFrame:
    """Each row's ``regime`` set to its operating condition (nearest train centre).

    Rows with a missing setting keep their regime and are logged; without a clustering (given
    regime column, or no conditions declared) the readings pass unchanged.
    """
    if not conditions.get("enabled") or not conditions.get("clustering"):
        return readings
    clustering = conditions["clustering"]
    columns = [setting_column(s) for s in clustering["columns"]]
    values = readings[columns].to_numpy(dtype=np.float64)
    finite = np.isfinite(values).all(axis=1)
    out = readings.copy()
    labels = out[c.REGIME].astype(str).to_numpy(dtype=object, copy=True)
    labels[finite] = oc.assign_conditions(values[finite], clustering)
    out[c.REGIME] = labels.astype(str)
    if (~finite).any():
        logger.warning(
            "%d rows lack an operating setting: regime kept as given", int((~finite).sum())
        )
    return out
