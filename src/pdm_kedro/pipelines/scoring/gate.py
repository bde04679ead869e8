"""The gate of the incremental scoring: which incoming files are new, which of their rows may be
scored, and the account of every file (rows in = rows scored + rows quarantined).

State lives in two partitioned datasets: ``scoring_batches`` (one JSON account per incoming file
already processed) and the ``prediction_log`` (the rows already scored, with their readings).
A cycle processes only the incoming files without an account; the earlier scored rows of the same
episodes come along as context (``batch_file`` null) so the window features of the new rows equal
those of a full re-run, and are dropped again before answering.

Rejected here, with the file, column and rows in the reason (``rejected_incoming``, one partition
per file): a file with an unknown or missing column or a wrong dtype (the whole file), a row whose
(episode, timestamp) was already received (a day sent twice), a row older than the last scored or
earlier reading of its episode (out of order). Every other row goes through the data contract
(``data_validation``), which quarantines the rest.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd
from pandas.api import types as ptypes

from pdm_kedro import contract as c
from pdm_kedro.fleet import parse_machine

logger = logging.getLogger(__name__)

BATCH = "batch_file"  # the incoming file a row came from; null on context rows
CONTEXT = "0000-context"  # partition name sorting before every day (gather keeps it first)
DAY = "%Y-%m-%d"


class NoNewBatchError(ValueError):
    """Every incoming file of the machine has been scored already."""


def _load(partitions: dict[str, Any] | None) -> dict[str, Any]:
    return {k: (v() if callable(v) else v) for k, v in sorted((partitions or {}).items())}


def batch_problem(
    frame: pd.DataFrame, sensors: list[str], name: str, machine_id: str
) -> str | None:
    """Why a whole incoming file cannot be read against the contract (None when it can)."""
    expected = [c.TIMESTAMP, c.EPISODE, c.REGIME, *sensors]
    where = f"machine {machine_id}, incoming file {name}.parquet"
    unknown = [col for col in frame.columns if col not in expected and col != BATCH]
    if unknown:
        return f"{where}: unknown column(s) {unknown} (the contract has {expected})"
    missing = [col for col in expected if col not in frame.columns]
    if missing:
        return f"{where}: missing column(s) {missing}"
    if not ptypes.is_datetime64_any_dtype(frame[c.TIMESTAMP]):
        return f"{where}: column '{c.TIMESTAMP}' has dtype {frame[c.TIMESTAMP].dtype}, not datetime"
    if not ptypes.is_integer_dtype(frame[c.EPISODE]):
        return f"{where}: column '{c.EPISODE}' has dtype {frame[c.EPISODE].dtype}, not integer"
    for sensor in sensors:
        dtype = frame[sensor].dtype
        if not ptypes.is_numeric_dtype(dtype) or ptypes.is_bool_dtype(dtype):
            return f"{where}: column '{sensor}' has dtype {dtype}, not numeric"
    return None


def _context(
    seen: dict[str, dict], log: dict[str, Any], episodes: set[int], columns: list[str]
) -> pd.DataFrame:
    """The rows already scored of ``episodes`` (from the prediction log), in contract columns."""
    days = sorted(
        {d for entry in seen.values() for d, eps in entry.get("days", {}).items()
         if episodes & set(eps)}
    )  # fmt: skip
    frames = []
    for day in days:
        if day not in log:
            continue
        part = log[day]() if callable(log[day]) else log[day]
        frames.append(part.loc[part[c.EPISODE].isin(episodes), columns])
    if not frames:
        return pd.DataFrame(columns=columns)
    return pd.concat(frames, ignore_index=True)


def _reject(frame: pd.DataFrame, mask: np.ndarray, reason: pd.Series | str) -> pd.DataFrame:
    out = frame.loc[mask].copy()
    out[c.QUARANTINE_REASON] = reason if isinstance(reason, str) else reason[mask].to_numpy()
    return out


def admit_incoming_batches(
    incoming_readings: dict[str, Any],
    scoring_batches: dict[str, Any],
    scored_log: dict[str, Any],
    machine: dict[str, Any],
) -> tuple[dict[str, pd.DataFrame], dict[str, pd.DataFrame], list[str]]:
    """The new incoming files (no account in ``scoring_batches`` yet) ready for the contract,
    plus the context rows; and the rows rejected here, one partition per file.

    Returns:
        ``incoming_batch``: ``{CONTEXT: earlier scored rows of the same episodes, <file>:
        admitted rows}``, every row with ``batch_file`` (null on context rows);
        ``rejected_incoming``: ``{<file>: rejected rows + quarantine_reason}`` (files with none
        are left out); ``incoming_files``: the new files' names.
    """
    spec = parse_machine(machine)
    sensors = spec.sensor_names
    seen = _load(scoring_batches)
    new = [name for name in sorted(incoming_readings or {}) if name not in seen]
    if not new:
        raise NoNewBatchError(
            f"Machine {spec.machine_id}: no new incoming file under 01_raw/{spec.machine_id}/"
            f"incoming/ ({len(seen)} already scored)."
        )
    columns = [c.TIMESTAMP, c.EPISODE, c.REGIME, *sensors]
    admitted, rejected = {}, {}
    for name in new:
        raw = incoming_readings[name]
        frame = (raw() if callable(raw) else raw).reset_index(drop=True)
        problem = batch_problem(frame, sensors, name, spec.machine_id)
        if problem:
            logger.warning("%s", problem)
            rejected[name] = frame.assign(**{BATCH: name, c.QUARANTINE_REASON: problem})
            continue
        frame = frame[columns].assign(**{BATCH: name})
        # out of order within the file: older than an earlier row of its episode in the file
        previous = frame.groupby(c.EPISODE, sort=False)[c.TIMESTAMP].cummax()
        previous = previous.groupby(frame[c.EPISODE], sort=False).shift()
        disorder = (previous.notna() & (frame[c.TIMESTAMP] < previous)).to_numpy()
        admitted[name] = (frame, disorder)
    episodes = {int(e) for frame, _ in admitted.values() for e in frame[c.EPISODE].unique()}
    context = _context(seen, scored_log or {}, episodes, columns)
    known = pd.MultiIndex.from_frame(context[[c.EPISODE, c.TIMESTAMP]])
    latest = context.groupby(c.EPISODE)[c.TIMESTAMP].max()
    batch = {CONTEXT: context.assign(**{BATCH: None})} if len(context) else {}
    for name, (frame, disorder) in admitted.items():
        keys = pd.MultiIndex.from_frame(frame[[c.EPISODE, c.TIMESTAMP]])
        duplicate = keys.isin(known)
        last = pd.to_datetime(frame[c.EPISODE].map(latest))
        older = (last.notna() & (frame[c.TIMESTAMP] < last)).to_numpy() & ~duplicate
        where = f"machine {spec.machine_id}, incoming file {name}.parquet"
        reasons = pd.Series("", index=frame.index)
        reasons[disorder] = f"{where}: timestamp out of order within the file"
        reasons[older] = f"{where}: timestamp older than the last scored reading of its episode"
        reasons[duplicate] = f"{where}: (episode_id, timestamp) already received and scored"
        bad = disorder | older | duplicate
        if bad.any():
            rows = np.flatnonzero(bad)
            logger.warning(
                "%s: %d row(s) rejected (rows %s%s): duplicates %d, out of order %d",
                where,
                len(rows),
                rows[:5].tolist(),
                "..." if len(rows) > 5 else "",
                int(duplicate.sum()),
                int((disorder | older).sum()),
            )
            rejected[name] = _reject(frame, bad, reasons)
        if (~bad).any():
            batch[name] = frame.loc[~bad].reset_index(drop=True)
        known = known.append(keys[~bad])
    if not any(name != CONTEXT for name in batch):
        # every new row was rejected here: the newest scored day carries the run (it is context,
        # nothing is answered again) so each file's account is still written
        if not scored_log:
            raise NoNewBatchError(
                f"Machine {spec.machine_id}: every row of the new incoming file(s) "
                f"{', '.join(new)} was rejected and nothing was scored before: "
                + "; ".join(
                    sorted({str(r) for f in rejected.values() for r in f[c.QUARANTINE_REASON]})
                )
            )
        newest = max(scored_log)
        part = scored_log[newest]() if callable(scored_log[newest]) else scored_log[newest]
        frames = [f for f in (batch.get(CONTEXT), part[columns]) if f is not None and len(f)]
        context_rows = pd.concat(frames, ignore_index=True)
        batch[CONTEXT] = context_rows.drop_duplicates([c.EPISODE, c.TIMESTAMP]).assign(
            **{BATCH: None}
        )
    logger.info(
        "%s: %d new incoming file(s) (%s), %d context row(s) from the prediction log",
        spec.machine_id,
        len(new),
        ", ".join(new),
        len(context),
    )
    return batch, rejected, new


def account_batches(
    incoming_files: list[str],
    raw_incoming: pd.DataFrame,
    rejected_incoming: dict[str, Any],
    validated_incoming: pd.DataFrame,
    quarantine_incoming: pd.DataFrame,
    machine: dict[str, Any],
) -> dict[str, dict[str, Any]]:
    """One account per new incoming file: rows in, scored, quarantined (by the gate and by the
    contract), ``rows_conserved``, missing rate per sensor, and the days and episodes scored (the
    gate's index of the prediction log)."""
    spec = parse_machine(machine)
    sensors = spec.sensor_names
    rejected = _load({k: v for k, v in (rejected_incoming or {}).items() if k in incoming_files})
    out = {}
    for name in incoming_files:  # context rows (null batch_file) are not counted
        admitted = raw_incoming[raw_incoming[BATCH] == name]
        gate = rejected.get(name, pd.DataFrame())
        scored = validated_incoming[validated_incoming[BATCH] == name]
        contract = quarantine_incoming[quarantine_incoming[BATCH] == name]
        rows_in = len(admitted) + len(gate)
        days = pd.to_datetime(scored[c.TIMESTAMP]).dt.strftime(DAY)
        out[name] = {
            "machine_id": spec.machine_id,
            "file": f"{name}.parquet",
            "rows_in": rows_in,
            "rows_scored": len(scored),
            "rows_quarantined": len(gate) + len(contract),
            "rows_rejected_by_gate": len(gate),
            "rows_quarantined_by_contract": len(contract),
            "rows_conserved": rows_in == len(scored) + len(gate) + len(contract),
            "reasons": sorted(
                {
                    *gate.get(c.QUARANTINE_REASON, pd.Series(dtype=str)).astype(str).unique(),
                    *contract.get(c.QUARANTINE_REASON, pd.Series(dtype=str)).astype(str).unique(),
                }
            ),  # fmt: skip
            "missing_rate": {
                s: round(float(pd.to_numeric(admitted[s], errors="coerce").isna().mean()), 6)
                for s in sensors
                if len(admitted)
            },
            "days": {
                d: sorted(int(e) for e in part[c.EPISODE].unique())
                for d, part in scored.groupby(days, sort=True)
            },
        }
        if not out[name]["rows_conserved"]:  # pragma: no cover - guards the invariant
            raise RuntimeError(f"{spec.machine_id}/{name}: rows lost between gate and scoring")
    return out
