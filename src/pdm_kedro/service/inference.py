"""Answers over HTTP = answers of the edge runtime: JSON columns -> typed arrays -> ``edge.predict``.

The service only types the JSON columns (numbers -> float64 with ``null`` as NaN, ISO strings ->
datetime64) and refuses what JSON allows but readings cannot be (a string in a sensor column, a
number as a timestamp). Every other check (sensor names, missing runs, inf, timestamp order, how
much history) and every feature and model call is :func:`pdm_kedro.edge.runtime.predict`'s, on the
same bundle: a per-family answer uses a view of the bundle holding that family's session only.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from pdm_kedro.edge.errors import EdgeInputError
from pdm_kedro.edge.explain import ExplainRequestError
from pdm_kedro.edge.runtime import predict
from pdm_kedro.service.errors import ServiceError
from pdm_kedro.service.registry import ServedMachine


def _types(values: list[Any]) -> set[type]:
    """The Python types in a column (one C-level pass; the per-row scan only on a bad column)."""
    return set(map(type, values))


def _timestamps(name: str, values: list[Any]) -> np.ndarray:
    if _types(values) - {str}:
        bad = [i for i, v in enumerate(values) if not isinstance(v, str)]
        raise ServiceError(
            422,
            "invalid_readings",
            f"Column {name!r}: rows {bad[:5]} are not ISO 8601 strings (got {values[bad[0]]!r}).",
        )
    text = [v.strip().replace(" ", "T").removesuffix("Z") for v in values]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # time-zone offsets: let the edge say which row
            return np.array(text, dtype="datetime64[s]")
    except (ValueError, Warning, OverflowError):
        return np.asarray(values, dtype=object)  # the edge names the first bad row


def to_arrays(machine: ServedMachine, readings: dict[str, list[Any]]) -> dict[str, np.ndarray]:
    """Typed columns for the edge runtime (422 for values of the wrong JSON type)."""
    inputs = machine.manifest["inputs"]
    ts_col, regime_col = inputs["timestamp_column"], inputs["regime_column"]
    sensors = {s["name"] for s in machine.manifest["sensors"]}
    out: dict[str, np.ndarray] = {}
    for name, values in readings.items():
        if name == ts_col:
            out[name] = _timestamps(name, values)
        elif name == regime_col:
            if _types(values) - {str}:
                bad = [i for i, v in enumerate(values) if not isinstance(v, str)]
                raise ServiceError(
                    422,
                    "invalid_readings",
                    f"Column {name!r}: rows {bad[:5]} are not regime names "
                    f"(got {values[bad[0]]!r}); regimes are "
                    f"{sorted(machine.manifest['regimes']['codes'])}.",
                )
            out[name] = np.asarray(values, dtype=str)
        elif name in sensors:
            if str in _types(values):
                bad = [i for i, v in enumerate(values) if isinstance(v, str)]
                raise ServiceError(
                    422,
                    "invalid_readings",
                    f"Sensor {name!r}: rows {bad[:5]} are strings (got {values[bad[0]]!r}); "
                    "readings are numbers, null for a missing reading.",
                )
            out[name] = np.array(values, dtype=np.float64)  # None -> NaN (a missing reading)
        else:
            out[name] = np.asarray(values, dtype=object)  # ignored or unknown: the edge decides
    return out


def check_rows(readings: dict[str, list[Any]], max_rows: int, machine_id: str) -> int:
    """413 when one request carries more rows than the configured limit."""
    rows = max((len(v) for v in readings.values()), default=0)
    if rows > max_rows:
        raise ServiceError(
            413,
            "too_many_rows",
            f"Readings for machine {machine_id} have {rows} rows; the limit is {max_rows} per "
            "machine and request.",
        )
    return rows


def answer(
    machine: ServedMachine,
    readings: dict[str, list[Any]],
    *,
    families: list[str] | None = None,
    all_rows: bool = False,
    from_episode_start: bool = False,
    explain: int | None = None,
) -> dict[str, Any]:
    """The edge runtime's answer for ``families`` (default: all) plus the served versions;
    with ``explain``, the runtime's explanation of the last row (422 for a bad ``explain``)."""
    if families is None:
        bundle, served = machine.bundle, list(machine.families)
    else:
        missing = [f for f in families if f not in machine.views]
        if missing:
            raise ServiceError(
                404,
                "unknown_family",
                f"Machine {machine.machine_id} serves no {', '.join(missing)} model; it serves "
                f"{', '.join(machine.families)}.",
            )
        if len(families) == 1:
            bundle = machine.views[families[0]]
        else:
            from pdm_kedro.edge.bundle import EdgeBundle  # noqa: PLC0415

            bundle = EdgeBundle(
                path=machine.bundle.path,
                manifest=machine.manifest,
                sessions={f: machine.bundle.sessions[f] for f in families},
                explainer=machine.bundle.explainer,
            )
        served = list(families)
    arrays = to_arrays(machine, readings)
    try:
        result = predict(
            bundle,
            arrays,
            all_rows=all_rows,
            from_episode_start=from_episode_start,
            explain=explain,
        )
    except ExplainRequestError as err:
        raise ServiceError(422, "invalid_explain", str(err)) from None
    except EdgeInputError as err:
        raise ServiceError(422, "invalid_readings", str(err)) from None
    result["models"] = {f: machine.versions[f] for f in served}
    result["bundle_version"] = machine.bundle_version
    return result
