"""Causal window features per episode, with baselines fitted on the training split only."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd

from pdm_kedro import contract as c
from pdm_kedro.contract import feature_columns  # noqa: F401 (the feature table's model inputs)
from pdm_kedro.core.degradation_features import (
    degradation_block,
    degradation_settings,
    fit_signature,
    settings_feature_names,
)
from pdm_kedro.core.window_features import (
    episode_features,
    feature_names,
    window_labels,
    window_rows,
)
from pdm_kedro.evaluation.threshold_rule import (
    apply_threshold_rule,
    f1_score_binary,
    fit_threshold_rule,
)
from pdm_kedro.fleet import parse_machine

from .conditions import apply_condition_scaling_of, fit_condition_scaling_of
from .snapshot import build_snapshot_features, fit_snapshot_block, is_snapshot_source

logger = logging.getLogger(__name__)

MAD_TO_SD = 1.4826


def data_resolution(values: np.ndarray) -> float:
    """The smallest step between distinct finite values (0.0 for fewer than two): the scaling
    floor of a sensor whose noise the config does not give."""
    distinct = np.unique(values[np.isfinite(values)])
    return float(np.min(np.diff(distinct))) if distinct.size > 1 else 0.0


def fit_sensor_baselines(
    train: pd.DataFrame, machine: dict[str, Any], features: dict[str, Any]
) -> dict[str, Any]:
    """Per-sensor median and robust scale (MAD) of the training split, and its regimes.

    Fitted on train only; the same constants are applied to val, test and on the edge. A
    snapshot source (``time_kind: none``) also gets ``snapshot``: its categorical levels and the
    snapshot features that are not constant on train (:mod:`.snapshot`).
    """
    spec = parse_machine(machine)
    floor = float(features["robust_scale_floor"])
    condition_scaling = fit_condition_scaling_of(train, machine)
    given = train
    train = apply_condition_scaling_of(train, condition_scaling, spec.sensor_names)
    snapshot = (
        fit_snapshot_block(given, train if condition_scaling else None, machine, spec.sensor_names)
        if is_snapshot_source(machine)
        else None
    )
    sensors = {}
    for sensor in spec.sensors:
        values = train[sensor.name].to_numpy(dtype=np.float64)
        values = values[np.isfinite(values)]
        median = float(np.median(values)) if values.size else float(sensor.nominal or 0.0)
        mad = float(np.median(np.abs(values - median))) if values.size else 0.0
        # the floor: the sensor's configured noise, else its resolution in the data
        noise = sensor.noise if sensor.noise is not None else data_resolution(values)
        sensors[sensor.name] = {
            "median": median,
            # readings scaled per condition are z-scores: the sensor's noise (raw units) no
            # longer applies
            "scale": max(MAD_TO_SD * mad, 0.0 if condition_scaling else noise, floor),
            "unit": sensor.unit,
            "kind": sensor.kind,
        }
    regimes = sorted(train[c.REGIME].dropna().unique().tolist()) if c.REGIME in train else []
    degradation = degradation_settings(features.get("degradation"), spec.rows_per_hour)
    if "signature" in degradation["groups"]:
        # per-failure-mode health indicators need readings in sensor units and episodes in time
        # order: none for condition-scaled or snapshot data, or a machine without signatures
        degradation["signature"] = (
            None
            if condition_scaling or snapshot
            else fit_signature_of(train, spec, sensors, degradation)
        )
    return {
        "machine_id": spec.machine_id,
        "sensors": sensors,
        "regimes": regimes,
        "windows_hours": list(features["windows_hours"]),
        "window_rows": window_rows(features["windows_hours"], spec.rows_per_hour),
        "statistics": list(features["statistics"]),
        # long-window / post-repair / failure-mode degradation columns
        # (pdm_kedro.core.degradation_features)
        "degradation": degradation,
        "fitted_on": {"split": "train", "rows": len(train)},
        **({"condition_scaling": condition_scaling} if condition_scaling else {}),
        **({"snapshot": snapshot} if snapshot else {}),
    }


DEFINITION_KEYS = ("machine_id", "windows_hours", "window_rows", "statistics")


def feature_definition(baselines: dict[str, Any]) -> dict[str, Any]:
    """What the baselines define, as opposed to what they fit: the sensors (unit, kind), windows,
    statistics, degradation settings (not their fitted signature), and whether readings are
    condition-scaled or snapshot rows. Two baselines with the same definition make the same
    feature columns."""
    degradation = {
        k: v for k, v in (baselines.get("degradation") or {}).items() if k != "signature"
    }
    return {
        **{key: baselines.get(key) for key in DEFINITION_KEYS},
        "sensors": {
            name: (info.get("unit"), info.get("kind"))
            for name, info in baselines.get("sensors", {}).items()
        },
        "degradation": degradation,
        "condition_scaling": bool(baselines.get("condition_scaling")),
        "snapshot": bool(baselines.get("snapshot")),
    }


def choose_sensor_baselines(
    fitted: dict[str, Any],
    served: dict[str, Any] | None,
    retraining_data: dict[str, Any],
) -> dict[str, Any]:
    """The baselines this run builds every split's features with.

    A retraining run (``retraining_data.use_production``, what ``pdm-kedro cycle --retrain``
    sets) keeps the baselines the machine is served with (``served``: the last run's
    ``sensor_baselines.json``, which the bundle and the scoring pipeline use) when
    ``retraining_data.keep_served_baselines`` is true (the default) and they define the same
    features as this run's parameters. Otherwise the run's own fit (``fitted``, train split).

    Why: every family's champion must compute its inputs with the constants it was trained on.
    A retraining run that refits them (its train split now holds production episodes) and then
    keeps one family's champion and promotes another's challenger leaves the bundle and the
    scoring pipeline serving the kept champion features built with other constants
    (docs/continuous_training.md). Keeping the served constants keeps every champion, kept or
    new, on the same ones. A plain ``kedro run`` always fits its own.
    """
    machine_id = fitted.get("machine_id")
    retraining = bool((retraining_data or {}).get("use_production", False))
    keep = bool((retraining_data or {}).get("keep_served_baselines", True))
    if not retraining or not keep or served is None:
        return fitted
    if feature_definition(served) != feature_definition(fitted):
        logger.warning(
            "%s: the served sensor baselines define other features than this run's parameters "
            "(windows, statistics, sensors or degradation changed): the retraining run uses its "
            "own fit; champions it keeps were trained on other features",
            machine_id,
        )
        return fitted
    logger.info(
        "%s: retraining keeps the served sensor baselines (fitted on %s)",
        machine_id,
        served.get("fitted_on"),
    )
    return served


def fit_signature_of(
    train: pd.DataFrame, spec: Any, sensors: dict[str, dict[str, Any]], degradation: dict
) -> dict[str, Any] | None:
    """The failure-mode health indicators' constants from the train split (healthy reference
    per regime, each mode's signature in sensor units): see
    :func:`pdm_kedro.core.degradation_features.fit_signature`."""
    ordered = train.sort_values([c.EPISODE, c.TIMESTAMP], kind="stable")
    episodes = ordered[c.EPISODE].to_numpy()
    starts = np.flatnonzero(np.r_[True, episodes[1:] != episodes[:-1]]) if len(ordered) else []
    return fit_signature(
        ordered[spec.sensor_names].to_numpy(dtype=np.float64),
        ordered[c.REGIME].to_numpy() if c.REGIME in ordered else None,
        np.asarray(starts, dtype=np.int64),
        [
            {
                "name": sensor.name,
                "nominal": sensor.nominal,
                "noise": sensor.noise
                if sensor.noise is not None
                else sensors[sensor.name]["scale"],
            }
            for sensor in spec.sensors
        ],
        {
            mode: {name: {"level": sig.level} for name, sig in fm.signature.items()}
            for mode, fm in spec.failure_modes.items()
        },
        degradation,
    )


def build_window_features(
    validated: pd.DataFrame, baselines: dict[str, Any], machine: dict[str, Any]
) -> pd.DataFrame:
    """Window features of every row, computed episode by episode from that row and earlier ones.

    Returns the id columns (timestamp, episode_id, regime), the label columns present in the
    input, ``regime_code`` and the feature columns named by
    :func:`pdm_kedro.core.window_features.feature_names`. Snapshot rows (no time order: the
    baselines carry ``snapshot``) get the snapshot features instead, and no ``regime_code``.
    """
    spec = parse_machine(machine)
    sensors = spec.sensor_names
    if baselines.get("snapshot"):
        zscored = (
            apply_condition_scaling_of(validated, baselines["condition_scaling"], sensors)
            if baselines.get("condition_scaling")
            else None
        )
        return build_snapshot_features(validated, zscored, baselines, machine, sensors)
    kinds = [baselines["sensors"][s]["kind"] for s in sensors]
    median = np.array([baselines["sensors"][s]["median"] for s in sensors])
    scale = np.array([baselines["sensors"][s]["scale"] for s in sensors])
    windows = baselines["window_rows"]
    stats = baselines["statistics"]
    names = feature_names(sensors, kinds, window_labels(baselines["windows_hours"]), stats)
    degradation = baselines.get("degradation")
    names += settings_feature_names(sensors, degradation)

    ordered = validated.sort_values([c.EPISODE, c.TIMESTAMP], kind="stable").reset_index(drop=True)
    scaled = apply_condition_scaling_of(ordered, baselines.get("condition_scaling"), sensors)
    readings = scaled[sensors].to_numpy(dtype=np.float64)
    regimes = ordered[c.REGIME].to_numpy() if c.REGIME in ordered.columns else None
    starts = np.flatnonzero(
        np.r_[True, ordered[c.EPISODE].to_numpy()[1:] != ordered[c.EPISODE].to_numpy()[:-1]]
    )
    bounds = np.r_[starts, len(ordered)]
    blocks = [
        np.column_stack(
            [
                episode_features(readings[a:b], kinds, median, scale, windows, stats),
                degradation_block(
                    readings[a:b],
                    median,
                    scale,
                    degradation,
                    None if regimes is None else regimes[a:b],
                ),
            ]
        )
        for a, b in zip(bounds[:-1], bounds[1:], strict=True)
    ]
    matrix = np.vstack(blocks) if blocks else np.empty((0, len(names)))
    keep = [col for col in (*c.ID_COLUMNS, *c.LABEL_COLUMNS) if col in ordered.columns]
    out = ordered[keep].copy()
    if c.REGIME in ordered.columns:
        codes = {name: i for i, name in enumerate(baselines["regimes"])}
        out["regime_code"] = ordered[c.REGIME].map(codes).fillna(-1).astype(np.int64)
    features = pd.DataFrame(matrix, columns=names, index=out.index)
    return pd.concat([out, features], axis=1)


def assess_label_difficulty(
    features_train: pd.DataFrame, features_val: pd.DataFrame, machine: dict[str, Any]
) -> dict[str, Any]:
    """How well a single-row threshold on one raw sensor predicts each binary label.

    The rule is fitted on train and scored on val. Near-perfect scores would mean the labels are
    computable from one row's readings (leakage); the model families must beat these figures.
    """
    spec = parse_machine(machine)
    report: dict[str, Any] = {"machine_id": spec.machine_id, "labels": {}}
    for label in (c.FAILURE_WITHIN_HORIZON, c.ANOMALY):
        if label not in features_train or label not in features_val:
            continue
        rule = fit_threshold_rule(features_train, spec.sensor_names, label)
        flags = apply_threshold_rule(features_val, rule)
        y_val = features_val[label].to_numpy()
        report["labels"][label] = {
            "rule": {k: rule[k] for k in ("column", "direction", "threshold")},
            "f1_train": rule["f1"],
            "f1_val": f1_score_binary(y_val, flags),
            "positive_rate_train": float(features_train[label].mean()),
            "positive_rate_val": float(np.mean(y_val)),
        }
    return report
