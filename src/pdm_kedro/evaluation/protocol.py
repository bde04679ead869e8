"""Scoring protocols declared by a machine's source: which test rows make the headline figures.

A file source declares ``source.protocol`` (see ``pipelines/data_ingestion/source.py``); simulated
machines score every test row. For run-to-failure units with truncated test histories
(``rul: last_cycle``, the C-MAPSS protocol) the RUL headline is one prediction per unit, at its
last observed row, against the capped truth.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from pdm_kedro import contract as c

ALL_ROWS = "all_rows"
LAST_CYCLE = "last_cycle"


def declared_protocol(machine: dict[str, Any]) -> dict[str, Any]:
    """The machine's scoring protocol: ``{"name", "rul"}`` (defaults: every test row)."""
    source = dict(machine.get("source") or {})
    declared = dict(source.get("protocol") or {})
    rul = declared.get("rul", ALL_ROWS)
    if rul not in (ALL_ROWS, LAST_CYCLE):
        raise ValueError(
            f"machine {machine.get('machine_id')!r}: source.protocol.rul must be "
            f"{ALL_ROWS!r} or {LAST_CYCLE!r}, got {rul!r}"
        )
    name = declared.get("name") or (
        "last observed row of each test unit" if rul == LAST_CYCLE else "every test row"
    )
    return {"name": name, "rul": rul}


def last_observed_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """The last row (latest timestamp) of each episode, in episode order.

    Ties on the timestamp keep the row that comes last in ``frame``.
    """
    ordered = frame.sort_values([c.EPISODE, c.TIMESTAMP], kind="stable")
    return ordered.groupby(c.EPISODE, sort=True).tail(1).reset_index(drop=True)
