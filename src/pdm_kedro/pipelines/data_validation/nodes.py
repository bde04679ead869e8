"""Validate a machine's raw splits against the data contract; fail or quarantine bad rows."""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd
import pandera.errors as pa_errors

from pdm_kedro import contract as c
from pdm_kedro.fleet import parse_machine

from .schemas import build_raw_schema

logger = logging.getLogger(__name__)


class DataValidationError(ValueError):
    """Raw data that breaks the contract, with machine, split, column, check and rows named."""


def _normalise_failure_cases(failure_cases: pd.DataFrame) -> pd.DataFrame:
    """Pandera's failure cases with the column each one is about and one row per failure.

    Frame-wide checks (timestamp order) are reported once per row against ``timestamp``
    instead of once per column; a missing column is reported against its own name.
    """
    cases = failure_cases.copy()
    cases["check"] = cases["check"].astype(str)
    frame_wide = cases["schema_context"].astype(str).eq("DataFrameSchema")
    missing = cases["check"].eq("column_in_dataframe")
    cases["column"] = cases["column"].astype(object)
    cases.loc[missing, "column"] = cases.loc[missing, "failure_case"]
    cases.loc[frame_wide & ~missing, "column"] = c.TIMESTAMP
    cases["column"] = cases["column"].fillna("<dataframe>").astype(str)
    return cases.drop_duplicates(subset=["column", "check", "index"])


def _summarise_failures(
    cases: pd.DataFrame, frame: pd.DataFrame, example_rows: int
) -> list[dict[str, Any]]:
    """One entry per (column, check): how many rows fail and a few of them."""
    summary = []
    for (column, check), group in cases.groupby(["column", "check"], sort=True):
        rows = sorted({int(i) for i in group["index"].dropna()})
        entry: dict[str, Any] = {"column": column, "check": check, "rows": len(rows)}
        if rows:
            entry["example_rows"] = rows[:example_rows]
            shown = frame.loc[rows[:example_rows]]
            if column in frame.columns:
                entry["example_values"] = [str(v) for v in shown[column].tolist()]
        else:
            entry["scope"] = "column"
            entry["detail"] = (
                f"found dtype {frame[column].dtype}"
                if column in frame.columns
                else "column is missing"
            )
        summary.append(entry)
    return summary


def _describe(machine_id: str, split: str, failures: list[dict[str, Any]]) -> str:
    lines = [
        f"Machine {machine_id}, split {split} (dataset {machine_id}.raw_{split}) "
        "breaks the raw data contract:"
    ]
    for f in failures:
        if f.get("scope") == "column":
            lines.append(f"  - column {f['column']!r}: check {f['check']} failed: {f['detail']}")
        else:
            lines.append(
                f"  - column {f['column']!r}: check {f['check']} failed on {f['rows']} rows, "
                f"e.g. rows {f['example_rows']} with values {f.get('example_values', [])}"
            )
    return "\n".join(lines)


def validate_readings(
    raw: pd.DataFrame,
    machine: dict[str, Any],
    validation: dict[str, Any],
    split: str,
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """Check one raw split with the machine's Pandera schema (lazily: all failures at once).

    Column-level failures (missing column, wrong dtype) and an empty split always raise. Row-level
    failures raise when the machine's ``on_invalid`` is ``fail``; with ``quarantine`` the bad rows
    go to the quarantine output with the checks they broke, and the run continues.

    Returns:
        valid rows, quarantined rows (same columns plus ``quarantine_reason``), and a report
        with ``rows_in == rows_valid + rows_quarantined``.
    """
    spec = parse_machine(machine)
    example_rows = int(validation["example_rows"])
    if raw.empty:
        raise DataValidationError(
            f"Machine {spec.machine_id}, split {split} (dataset {spec.machine_id}.raw_{split}) "
            "is empty: there are no rows to validate."
        )
    frame = raw.reset_index(drop=True)
    schema = build_raw_schema(spec, int(validation["max_null_run"]))
    failures: list[dict[str, Any]] = []
    bad_rows: dict[int, list[str]] = {}
    try:
        schema.validate(frame, lazy=True)
    except pa_errors.SchemaErrors as err:
        cases = _normalise_failure_cases(err.failure_cases)
        failures = _summarise_failures(cases, frame, example_rows)
        column_level = [f for f in failures if f.get("scope") == "column"]
        if column_level or spec.on_invalid == "fail":
            raise DataValidationError(_describe(spec.machine_id, split, failures)) from None
        for row, column, check in cases[["index", "column", "check"]].itertuples(index=False):
            if pd.notna(row):
                bad_rows.setdefault(int(row), []).append(f"{column}:{check}")

    bad_index = pd.Index(sorted(bad_rows), dtype="int64")
    valid = frame.drop(index=bad_index).reset_index(drop=True)
    quarantined = frame.loc[bad_index].copy()
    quarantined[c.QUARANTINE_REASON] = ["; ".join(sorted(set(bad_rows[i]))) for i in bad_index]
    quarantined = quarantined.reset_index(drop=True)
    if len(valid) + len(quarantined) != len(frame):  # pragma: no cover - guards the invariant
        raise RuntimeError(f"{spec.machine_id}/{split}: rows lost during validation")
    if valid.empty:
        raise DataValidationError(
            f"Machine {spec.machine_id}, split {split}: every one of the {len(frame)} rows failed "
            f"validation:\n{_describe(spec.machine_id, split, failures)}"
        )
    if len(quarantined):
        logger.warning(
            "%s/%s: quarantined %d of %d rows (%s)",
            spec.machine_id,
            split,
            len(quarantined),
            len(frame),
            ", ".join(f"{f['column']}:{f['check']}={f['rows']}" for f in failures),
        )
    report = {
        "split": split,
        "rows_in": len(frame),
        "rows_valid": len(valid),
        "rows_quarantined": len(quarantined),
        "failures": failures,
    }
    return valid, quarantined, report


def combine_validation_reports(
    machine: dict[str, Any], train: dict, val: dict, test: dict
) -> dict[str, Any]:
    """The machine's validation report: per split counts and failures, and the totals."""
    spec = parse_machine(machine)
    splits = {r["split"]: r for r in (train, val, test)}
    totals = {
        key: sum(r[key] for r in splits.values())
        for key in ("rows_in", "rows_valid", "rows_quarantined")
    }
    return {
        "machine_id": spec.machine_id,
        "on_invalid": spec.on_invalid,
        "status": "clean" if totals["rows_quarantined"] == 0 else "quarantined_rows",
        **totals,
        "splits": splits,
    }


def gather_partitions(partitions: dict[str, Any]) -> pd.DataFrame:
    """One frame from a partitioned dataset's partitions (loaded in partition-name order, i.e.
    by day for ``<day>.parquet``), in time order within each episode."""
    if not partitions:
        raise DataValidationError(
            "The incoming batch is empty: no partition under 01_raw/<machine>/incoming/."
        )
    frames = [load() if callable(load) else load for _, load in sorted(partitions.items())]
    frame = pd.concat(frames, ignore_index=True)
    return frame.sort_values([c.EPISODE, c.TIMESTAMP], kind="stable").reset_index(drop=True)
