"""Answer every family for every row of an incoming batch with the machine's edge bundle.

The bundle holds the champion versions (its manifest names each family's ``registered_model``
and ``registry_version``), so the prediction log, the edge devices and MLflow agree on what is in
production. Answers are shaped by each family's kind (:mod:`pdm_kedro.families`), as the edge
runtime shapes them, and computed by the runtime's own functions on the features the
``feature_engineering`` stage built for the batch (the same definition, see ``tests/edge``).
"""

from __future__ import annotations

import json
import logging
from typing import Any

import numpy as np
import pandas as pd

from pdm_kedro import contract as c
from pdm_kedro.core.rul_answer import rul_at_alarm
from pdm_kedro.edge.bundle import EdgeBundle
from pdm_kedro.edge.errors import EdgeInputError
from pdm_kedro.edge.readings import check_readings
from pdm_kedro.edge.runtime import (
    family_output,
    feature_constants_warning,
    forecast,
    rul_rule,
)
from pdm_kedro.fleet import parse_machine

from .gate import BATCH

logger = logging.getLogger(__name__)

DAY = "%Y-%m-%d"
FORECAST_COLUMN = "forecast"


def _readings(rows: pd.DataFrame, sensors: list[str]) -> dict[str, np.ndarray]:
    out = {
        c.TIMESTAMP: rows[c.TIMESTAMP].to_numpy(dtype="datetime64[s]"),
        c.REGIME: rows[c.REGIME].astype(str).to_numpy(),
    }
    return out | {s: rows[s].to_numpy(dtype=np.float64) for s in sensors}


def _forecasts(
    bundle: EdgeBundle, validated: pd.DataFrame, days: pd.Series, new: pd.Series
) -> tuple[pd.Series, list[str]]:
    """The forecast (JSON) from the last new reading of each day and episode; null elsewhere."""
    sensors = [s["name"] for s in bundle.manifest["sensors"]]
    out = pd.Series([None] * len(validated), index=validated.index, dtype=object)
    warnings = []
    fresh = validated[new.to_numpy()]
    last = fresh.groupby([fresh[c.EPISODE], days[new]], sort=False).tail(1).index
    for row in last:
        episode = validated.at[row, c.EPISODE]
        rows = validated[(validated[c.EPISODE] == episode) & (validated.index <= row)]
        try:
            checked = check_readings(_readings(rows, sensors), bundle.manifest, 1, True)
            out.at[row] = json.dumps(forecast(bundle, checked))
        except EdgeInputError as err:
            warnings.append(f"no forecast at {validated.at[row, c.TIMESTAMP]}: {err}")
    return out, warnings


def _rul_consistent_with_alarm(log: pd.DataFrame, manifest: dict[str, Any]) -> None:
    """In place, as the edge runtime answers: ``<rul>.value`` at most the cap while the failure
    alarm is on, ``<rul>.model_value`` the RUL model's own, ``<rul>.capped_by_alarm``."""
    rule = rul_rule(manifest)
    if rule is None or f"{rule[0]}.value" not in log:
        return
    rul_key, failure_key, cap = rule
    value = f"{rul_key}.value"
    log[f"{rul_key}.model_value"] = log[value].to_numpy()
    if failure_key is None or f"{failure_key}.decision" not in log:
        return
    decision = f"{failure_key}.decision"
    answer, capped = rul_at_alarm(log[value].to_numpy(), log[decision].to_numpy(), cap)
    log[value] = answer
    log[f"{rul_key}.capped_by_alarm"] = capped


def answer_batch(
    features_incoming: pd.DataFrame,
    validated_incoming: pd.DataFrame,
    bundle: EdgeBundle,
    machine: dict[str, Any],
    scored_log: dict[str, Any] | None = None,
) -> tuple[dict[str, pd.DataFrame], dict[str, pd.DataFrame]]:
    """The prediction log of the new rows, one partition per day (``YYYY-MM-DD``), and their
    model features (``scored_features``, same partitions).

    Per row: timestamp, episode, regime, the sensor readings, ``batch_file`` (the incoming file),
    ``history_complete`` (enough earlier readings of the episode for the features to equal
    training's), every family's answer (``failure.probability``, ``failure.decision``,
    ``rul_hours.value`` (at most ``cap_at_alarm_hours`` while the alarm is on, as the edge
    answers; ``rul_hours.model_value`` and ``rul_hours.capped_by_alarm`` beside it),
    ``anomaly.score``, ``anomaly.flag``; ``forecast`` as JSON on each day's
    last new reading) and, per family, the ``registered_model`` and ``registry_version`` that
    answered. Context rows (``batch_file`` null: scored by an earlier cycle, there for the
    features' history) are not answered again; a day already in ``scored_log`` keeps its rows
    and gains the new ones.
    """
    spec = parse_machine(machine)
    if bundle.machine_id != spec.machine_id:
        raise ValueError(f"the bundle serves {bundle.machine_id}, not {spec.machine_id}")
    manifest = bundle.manifest
    if len(features_incoming) != len(validated_incoming):
        raise ValueError(f"{spec.machine_id}: features and validated readings differ in rows")
    features = features_incoming.reset_index(drop=True)
    validated = validated_incoming.reset_index(drop=True)
    new = validated[BATCH].notna() if BATCH in validated else pd.Series(True, index=validated.index)
    log = features[[c.TIMESTAMP, c.EPISODE, c.REGIME]].copy()
    position = log.groupby(c.EPISODE, sort=False).cumcount()
    log["history_complete"] = position >= int(manifest["inputs"]["min_history_rows"]) - 1
    days = pd.to_datetime(log[c.TIMESTAMP]).dt.strftime(DAY)
    warnings: list[str] = []
    for family in bundle.families:
        entry = manifest["models"][family]
        key, kind = entry["answer"]["key"], entry["answer"]["kind"]
        if kind == "forecast":
            log[FORECAST_COLUMN], warnings = _forecasts(bundle, validated, days, new)
    warnings += [
        w
        for family in bundle.families
        if (w := feature_constants_warning(family, manifest["models"][family])) is not None
    ]
    keep = new.to_numpy()
    log, days, features, validated = log[keep], days[keep], features[keep], validated[keep]
    matrix = features[manifest["feature_names"]].to_numpy(dtype=np.float64)
    for family in bundle.families:
        entry = manifest["models"][family]
        key, kind = entry["answer"]["key"], entry["answer"]["kind"]
        if kind != "forecast":
            values = family_output(bundle, family, matrix)
            name = {"probability": "probability", "value": "value", "score": "score"}[kind]
            log[f"{key}.{name}"] = values
            if kind in ("probability", "score"):
                flag = "decision" if kind == "probability" else "flag"
                log[f"{key}.{flag}"] = values >= float(entry["threshold"])
        log[f"{family}.registered_model"] = entry["registered_model"]
        log[f"{family}.registry_version"] = entry["registry_version"]
    _rul_consistent_with_alarm(log, manifest)
    for sensor in spec.sensor_names:
        log[sensor] = validated[sensor].to_numpy()
    log[BATCH] = validated[BATCH].to_numpy() if BATCH in validated else None
    for warning in warnings:
        logger.warning("%s: %s", spec.machine_id, warning)
    logger.info(
        "%s: scored %d new incoming rows over %d day(s) with the production models",
        spec.machine_id,
        len(log),
        days.nunique(),
    )
    feature_cols = [c.TIMESTAMP, c.EPISODE, *manifest["feature_names"]]
    batch_of = log[BATCH].fillna("batch").astype(str)
    feature_parts = {
        f"{day}_{batch}": part[feature_cols].reset_index(drop=True)
        for (day, batch), part in features.groupby([days, batch_of], sort=True)
    }  # one partition per day and file: a later file for the same day adds, never overwrites
    partitions = {}
    for day, part in log.groupby(days, sort=True):
        prior = (scored_log or {}).get(day)
        if prior is not None:
            prior = prior() if callable(prior) else prior
            part = pd.concat([prior, part], ignore_index=True).sort_values(  # noqa: PLW2901
                [c.EPISODE, c.TIMESTAMP], kind="stable"
            )
        partitions[day] = part.reset_index(drop=True)
    return partitions, feature_parts
