"""Check raw sensor readings against a bundle's manifest and turn them into typed arrays.

The edge receives the recent readings of one running episode, oldest first: a timestamp column,
the regime column and one column per sensor (names and units in the manifest). Every check raises
:class:`~pdm_kedro.edge.errors.EdgeInputError` with a message a technician can act on.
"""

from __future__ import annotations

import csv
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pdm_kedro.edge.errors import EdgeInputError

MISSING_TOKENS = frozenset({"", "nan", "NaN", "NA", "null", "None"})
EARLIEST_YEAR, LATEST_YEAR = 1990, 2100  # a timestamp outside is a unit or clock fault
INTERVAL_TOLERANCE = 0.1  # the median step may differ from the bundle's by 10 %
IMPLAUSIBLE_SCALES = 1000.0  # |reading - training median| beyond 1000 training scales: a fault
TINIEST_READING = (
    1e-30  # a non-zero reading closer to 0 is a corrupted float (1e-100), not a sensor
)


@dataclass(frozen=True)
class Readings:
    """Validated readings: (n, sensors) float64 values in manifest order, regimes, timestamps."""

    values: np.ndarray
    regimes: np.ndarray
    timestamps: np.ndarray
    sensors: tuple[str, ...]

    def __len__(self) -> int:
        return int(self.values.shape[0])


def read_readings_csv(path: str | Path, keep_last: int | None = None) -> dict[str, np.ndarray]:
    """Columns of a readings CSV (header row first) as string arrays; nothing is converted yet.

    With ``keep_last`` only the last ``keep_last`` rows are kept while the file is streamed, so
    memory stays bounded by the history the bundle needs, whatever the file's length.
    """
    path = Path(path)
    if not path.is_file():
        raise EdgeInputError(f"Readings file {path} does not exist.")
    bad: list[int] = []
    try:  # utf-8-sig: a byte order mark (Excel's "CSV UTF-8") is not part of the first name
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle)
            header = next(reader, None)
            if header is None:
                raise EdgeInputError(
                    f"Readings file {path} is empty: expected a header row and readings."
                )
            body: deque[list[str]] | list[list[str]] = deque(maxlen=keep_last) if keep_last else []
            width = len(header)
            for line, row in enumerate(reader, start=2):
                if len(row) != width:
                    if len(bad) < 5:
                        bad.append(line)
                    continue
                body.append(row)
    except UnicodeDecodeError as err:
        raise EdgeInputError(
            f"Readings file {path} is not UTF-8 text (byte {err.start}: {err.reason}): save it "
            "as CSV UTF-8."
        ) from None
    except csv.Error as err:
        raise EdgeInputError(f"Readings file {path} is not a readable CSV ({err}).") from None
    except OSError as err:
        raise EdgeInputError(f"Readings file {path} cannot be read ({err.strerror}).") from None
    if bad:
        raise EdgeInputError(
            f"Readings file {path}: lines {bad[:5]} do not have {len(header)} fields like the header."
        )
    columns = list(zip(*body, strict=True)) if body else [() for _ in header]
    return {
        name.strip(): np.asarray(col, dtype=str) for name, col in zip(header, columns, strict=True)
    }


def _to_float(name: str, values: Any) -> np.ndarray:
    array = np.asarray(values)
    if array.ndim != 1:
        raise EdgeInputError(f"Column {name!r} must be one-dimensional, got shape {array.shape}.")
    if array.dtype.kind in "fiu":
        return array.astype(np.float64)
    if array.dtype.kind not in "USO":
        raise EdgeInputError(
            f"Column {name!r} has dtype {array.dtype}: sensor readings must be numbers."
        )
    out = np.empty(array.shape[0], dtype=np.float64)
    for i, value in enumerate(array.tolist()):
        if value is None or (isinstance(value, str) and value.strip() in MISSING_TOKENS):
            out[i] = np.nan
            continue
        if isinstance(value, bool):
            raise EdgeInputError(f"Column {name!r}, row {i}: {value!r} is not a number.")
        try:
            out[i] = float(value)
        except (TypeError, ValueError):
            raise EdgeInputError(
                f"Column {name!r}, row {i}: {value!r} is not a number (wrong dtype)."
            ) from None
    return out


def _to_timestamps(values: Any) -> np.ndarray:
    array = np.asarray(values)
    if array.dtype.kind == "M":
        return array.astype("datetime64[s]")
    if array.dtype.kind not in "USO":
        raise EdgeInputError(
            f"Column 'timestamp' has dtype {array.dtype}: expected ISO 8601 date-times."
        )
    out = np.empty(array.shape[0], dtype="datetime64[s]")
    for i, value in enumerate(array.tolist()):
        text = str(value).strip().replace(" ", "T").removesuffix("Z")
        if text.lstrip("-").replace(".", "", 1).isdigit():
            raise EdgeInputError(
                f"Column 'timestamp', row {i}: {value!r} is a bare number (epoch seconds or "
                "milliseconds?): send ISO 8601 date-times such as 2026-01-31T14:00:00."
            )
        try:
            out[i] = np.datetime64(text, "s")
        except ValueError:
            raise EdgeInputError(
                f"Column 'timestamp', row {i}: {value!r} is not an ISO 8601 date-time."
            ) from None
    return out


def _check_timestamps(timestamps: np.ndarray, manifest: dict[str, Any]) -> None:
    years = timestamps.astype("datetime64[Y]").astype(np.int64) + 1970
    wrong = np.flatnonzero((years < EARLIEST_YEAR) | (years > LATEST_YEAR))
    if wrong.size:
        row = int(wrong[0])
        raise EdgeInputError(
            f"Column 'timestamp', row {row}: {timestamps[row]} is not a plausible reading time "
            f"(years {EARLIEST_YEAR}-{LATEST_YEAR}; {wrong.size} rows outside): check the clock "
            "and the unit."
        )
    steps = np.diff(timestamps).astype(np.int64)
    if np.any(steps <= 0):
        row = int(np.flatnonzero(steps <= 0)[0]) + 1
        raise EdgeInputError(
            f"Timestamps must increase strictly (oldest first): row {row} ({timestamps[row]}) "
            f"does not come after row {row - 1} ({timestamps[row - 1]})."
        )
    if steps.size and "sampling_interval_min" in manifest:
        expected = float(manifest["sampling_interval_min"]) * 60.0
        median = float(np.median(steps))
        if abs(median - expected) > INTERVAL_TOLERANCE * expected:
            raise EdgeInputError(
                f"Readings for machine {manifest['machine_id']} come every {median / 60:g} min "
                f"(median step), the bundle was trained on one reading every "
                f"{expected / 60:g} min: resample the readings to {expected / 60:g} min."
            )


def _check_ranges(values: np.ndarray, manifest: dict[str, Any]) -> None:
    for j, sensor in enumerate(manifest["sensors"]):
        tiny = np.flatnonzero((values[:, j] != 0) & (np.abs(values[:, j]) < TINIEST_READING))
        if tiny.size:
            row = int(tiny[0])
            raise EdgeInputError(
                f"Sensor {sensor['name']!r}, row {row}: {values[row, j]:g} is not a sensor "
                f"reading (a corrupted number, {tiny.size} such rows): resend the raw readings."
            )
        if "min" in sensor and "max" in sensor:
            column = values[:, j]
            wrong = np.flatnonzero((column < sensor["min"]) | (column > sensor["max"]))
            if wrong.size:
                row = int(wrong[0])
                raise EdgeInputError(
                    f"Sensor {sensor['name']!r} [{sensor['unit']}], row {row}: {column[row]:g} "
                    f"is outside the sensor's physical range [{sensor['min']:g}, "
                    f"{sensor['max']:g}] ({wrong.size} rows outside): check the sensor, its "
                    "unit and the column order."
                )
        if "median" not in sensor or "scale" not in sensor:
            continue  # a hand-made manifest without training reference (schema requires both)
        column = values[:, j]
        median, scale = float(sensor["median"]), float(sensor["scale"])
        limit = IMPLAUSIBLE_SCALES * max(abs(scale), 1e-9)
        wrong = np.flatnonzero(np.abs(column - median) > limit)
        if wrong.size:
            row = int(wrong[0])
            raise EdgeInputError(
                f"Sensor {sensor['name']!r} [{sensor['unit']}], row {row}: {column[row]:g} is "
                f"physically implausible (training median {median:g}, scale {scale:g}; "
                f"{wrong.size} rows more than {IMPLAUSIBLE_SCALES:g} scales away): check the "
                "sensor, its unit and the column order."
            )


def _max_nan_run(column: np.ndarray) -> tuple[int, int]:
    """Length and start row of the longest run of NaN in ``column``."""
    missing = np.r_[False, np.isnan(column), False].astype(np.int8)
    edges = np.diff(missing)
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    if not starts.size:
        return 0, -1
    lengths = ends - starts
    k = int(np.argmax(lengths))
    return int(lengths[k]), int(starts[k])


def check_readings(
    readings: Mapping[str, Any],
    manifest: dict[str, Any],
    min_rows: int,
    from_episode_start: bool = False,
) -> Readings:
    """Validate raw readings for a bundle and return them typed, in the manifest's sensor order.

    Args:
        readings: column name -> 1-D values (numbers, or strings as read from a CSV).
        manifest: the bundle manifest (sensors, regime column, allowed gaps).
        min_rows: rows needed for the last row's features to equal the training pipeline's.
        from_episode_start: the first row is the episode's first reading (any length is enough
            then, and the features of every row equal training exactly).

    Raises:
        EdgeInputError: wrong sensor names or count, ragged columns, non-numeric values, inf,
            missing readings beyond what training allowed, unordered timestamps, too few rows.
    """
    if not isinstance(readings, Mapping):
        raise EdgeInputError(
            f"Readings must be a mapping of column name to values, got {type(readings).__name__}."
        )
    spec = manifest["inputs"]
    sensors = [s["name"] for s in manifest["sensors"]]
    required = [spec["timestamp_column"], spec["regime_column"], *sensors]
    missing = [name for name in required if name not in readings]
    ignored = set(spec.get("ignored_columns", []))
    unknown = sorted(set(readings) - set(required) - ignored)
    if missing or unknown:
        parts = []
        if missing:
            parts.append(f"missing columns {missing}")
        if unknown:
            parts.append(f"unknown columns {unknown}")
        raise EdgeInputError(
            f"Readings for machine {manifest['machine_id']}: {' and '.join(parts)}. Expected "
            f"{spec['timestamp_column']!r}, {spec['regime_column']!r} and the {len(sensors)} "
            f"sensors {sensors}."
        )
    not_columns = [name for name in required if np.ndim(readings[name]) != 1]
    if not_columns:
        raise EdgeInputError(f"Columns {not_columns} must be one-dimensional sequences of values.")
    lengths = {name: len(readings[name]) for name in required}
    if len(set(lengths.values())) != 1:
        raise EdgeInputError(f"Readings columns have different lengths: {lengths}.")
    n = next(iter(lengths.values()))
    if n == 0:
        raise EdgeInputError("Readings hold no rows.")
    if not from_episode_start and n < min_rows:
        raise EdgeInputError(
            f"Too little history: {n} rows given, machine {manifest['machine_id']} needs the last "
            f"{min_rows} readings ({spec['min_history_hours']:g} h at one reading every "
            f"{manifest['sampling_interval_min']:g} min) so that the features equal training's, "
            "or the whole episode from its first reading (--from-episode-start)."
        )
    values = np.column_stack([_to_float(name, readings[name]) for name in sensors])
    infinite = np.argwhere(np.isinf(values))
    if infinite.size:
        row, col = infinite[0]
        raise EdgeInputError(
            f"Sensor {sensors[col]!r} has an infinite reading at row {row} "
            f"({len(infinite)} infinite values in all): send the raw reading or leave it empty."
        )
    max_gap = int(spec["max_missing_run"])
    for j, name in enumerate(sensors):
        run, start = _max_nan_run(values[:, j])
        if run > max_gap:
            raise EdgeInputError(
                f"Sensor {name!r} is missing (NaN) for {run} consecutive rows from row {start}; "
                f"at most {max_gap} are allowed (training quarantined longer gaps)."
            )
    if not from_episode_start:
        first_missing = [name for j, name in enumerate(sensors) if np.isnan(values[0, j])]
        if first_missing:
            raise EdgeInputError(
                f"The first row has no reading (NaN) for {first_missing}: it seeds forward "
                "filling, so send one more row of history (or --from-episode-start)."
            )
    _check_ranges(values, manifest)
    timestamps = _to_timestamps(readings[spec["timestamp_column"]])
    _check_timestamps(timestamps, manifest)
    regimes = np.asarray(readings[spec["regime_column"]])
    if regimes.dtype.kind not in "USO":
        raise EdgeInputError(
            f"Column {spec['regime_column']!r} has dtype {regimes.dtype}: expected regime names."
        )
    return Readings(
        values=values,
        regimes=regimes.astype(str),
        timestamps=timestamps,
        sensors=tuple(sensors),
    )
