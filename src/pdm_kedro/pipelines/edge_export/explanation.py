"""What the edge needs to explain its answers: the bundle's ``explanation.json`` (issue 13).

- :func:`describe_model_explanation` (per family): an XGBoost model's trees (the booster's JSON
  dump over the trees it predicts with, packed by :func:`pdm_kedro.edge.explain.pack_trees`) with
  its base value and output space; the anomaly detector's healthy training reference (mean and
  sd per input) for standardised deviations; nothing for a model without either.
- :func:`describe_diagnosis_for_edge`: the failure modes' signatures (in the units of the
  observed shifts), the healthy reference they are measured from and each mode's action.
- :func:`build_edge_explanation`: one document for the bundle, as canonical JSON text (the bytes
  the manifest's sha256 covers).
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd

from pdm_kedro import contract as c
from pdm_kedro.contract import feature_columns
from pdm_kedro.edge.explain import DEVIATION_SPACE, EXPLANATION_FORMAT, pack_trees
from pdm_kedro.evaluation import explain as ex
from pdm_kedro.fleet import parse_machine

NO_EXPLANATION = None


def _booster_trees(model: dict[str, Any]) -> tuple[list[str], float]:
    """(JSON dump of the trees the model predicts with, XGBoost's bias)."""
    estimator = model["estimator"]
    booster = estimator.get_booster()
    start, stop = ex._iteration_range(estimator)  # noqa: SLF001 (early stopping's best iteration)
    if stop:
        booster = booster[start:stop]
    dump = booster.get_dump(dump_format="json", with_stats=True)
    _, base = ex.tree_contributions(model, np.zeros((1, len(model["feature_names"]))))
    return dump, base


def describe_model_explanation(
    model: dict[str, Any], features_train: pd.DataFrame
) -> dict[str, Any]:
    """How the edge explains one family's answer.

    ``{"family", "method": "treeshap", "output_space", "feature_names", "base_value", "trees"}``
    for an XGBoost model; ``{"family", "method": "deviation", "output_space", "feature_names",
    "reference"}`` for the anomaly detector (mean and sd of each input over the healthy training
    rows, ``anomaly == 0``); ``{"family", "method": None}`` otherwise.
    """
    family = model["family"]
    names = list(model.get("feature_names", []))
    estimator = model.get("estimator")
    if family in ex.OUTPUT_SPACE and hasattr(estimator, "get_booster"):
        dump, base = _booster_trees(model)
        return {
            "family": family,
            "method": "treeshap",
            "output_space": ex.OUTPUT_SPACE[family],
            "feature_names": names,
            "base_value": base,
            "trees": pack_trees(dump, names),
        }
    if family == "anomaly" and names:
        healthy = features_train
        if c.ANOMALY in features_train:
            healthy = features_train[features_train[c.ANOMALY] == 0]
        return {
            "family": family,
            "method": "deviation",
            "output_space": DEVIATION_SPACE,
            "feature_names": names,
            "reference": ex.fit_reference(healthy if len(healthy) else features_train, names),
        }
    return {"family": family, "method": NO_EXPLANATION}


def describe_diagnosis_for_edge(
    reference: dict[str, Any],
    machine: dict[str, Any],
    sensor_baselines: dict[str, Any],
    diagnosis: dict[str, Any],
) -> dict[str, Any]:
    """The diagnosis the edge runs on the last row: per sensor its scale and healthy reference
    (long-window mean of the z-score, std), per mode its signature (the same units as the
    observed shifts: :func:`pdm_kedro.evaluation.explain.mode_signatures`) and action."""
    spec = parse_machine(machine)
    signatures = ex.mode_signatures(machine, sensor_baselines)
    return {
        "long": reference["long"],
        "temperature": float(diagnosis["temperature"]),
        "top_modes": int(diagnosis["top_modes"]),
        "sensors": [
            {
                "name": s,
                "scale": float(sensor_baselines["sensors"][s]["scale"]),
                "reference": {k: float(v) for k, v in reference["sensors"][s].items()},
            }
            for s in spec.sensor_names
        ],
        "modes": {
            mode: {
                "signature": [float(v) for v in signatures[mode]],
                "description": fm.description,
                "action": fm.action,
                "part": fm.part,
                "repair_time_h": fm.repair_time_h,
            }
            for mode, fm in spec.failure_modes.items()
        },
    }


def build_edge_explanation(
    machine: dict[str, Any],
    features_test: pd.DataFrame,
    diagnosis: dict[str, Any],
    *families: dict[str, Any],
) -> str:
    """``explanation.json`` as canonical JSON text (sorted keys, ASCII): the descriptions of
    every feature column (sensor, window, statistic, unit), each family's explanation and the
    diagnosis. The manifest records the sha256 of exactly this text."""
    spec = parse_machine(machine)
    names = feature_columns(features_test)
    descriptions = ex.feature_descriptions(names, machine).astype(object)
    records = descriptions.where(descriptions.notna(), None).to_dict("records")
    document = {
        "format_version": EXPLANATION_FORMAT,
        "machine_id": spec.machine_id,
        "features": records,
        "families": {doc["family"]: doc for doc in families if doc.get("method")},
        "diagnosis": diagnosis if diagnosis.get("modes") else None,
    }
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
