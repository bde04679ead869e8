"""Per-prediction explanations: exact TreeSHAP of the XGBoost models, readable feature names,
anomaly deviations and the failure-mode diagnosis they feed.

- :func:`tree_contributions`: XGBoost's own TreeSHAP (``pred_contribs``) in the model's raw
  output space (log-odds for the failure classifier, hours for RUL) with its base value; the
  contributions plus the base value are the model's raw margin (local accuracy).
- :func:`describe_feature`: a feature column back to sensor, window, statistic and unit, for
  every column :func:`pdm_kedro.core.window_features.feature_names` produces (a failure-mode
  health indicator ``hi_<mode>__...`` is described by its mode).
- :func:`anomaly_deviations`: each detector input's standardised deviation from its training
  reference. Honest for both detectors (an IsolationForest's TreeSHAP explains path length and
  does not sum to its score; a one-class SVM has no trees): a deviation, not a SHAP sum.
- :func:`diagnose`: the likely developing failure mode(s) from how a row's deviations match each
  configured mode's signature (``failure_modes.<mode>.signature`` of the machine's config).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import xgboost as xgb

from pdm_kedro.edge.explain import STAT_TEXT, diagnose, feature_text  # noqa: F401 (re-exported)
from pdm_kedro.fleet import parse_machine

OUTPUT_SPACE = {"classification": "log-odds of failure within the horizon", "regression": "hours"}
# Aggregate features over sensors of one kind (``temperature__spread``): sensor = the kind.
AGGREGATES = {"temperature", "vibration", "health_index"}
# Operating-context columns (not a sensor): their own group.
CONTEXT = {"regime_code"}
# Failure-mode health indicators (pdm_kedro.core.degradation_features, ``signature`` group).
SIGNATURE_PREFIX = "hi_"
_WINDOWED = re.compile(r"^(?P<stat>[a-z_]+?)_(?P<window>\d+(?:\.\d+)?h)$")
_STAT_TEXT = STAT_TEXT  # one home: pdm_kedro.edge.explain (the edge reads the same texts)
_UNITLESS = {"zscore", "median_resid", "repeat_run", "index"}


class ExplainError(ValueError):
    """A model family or request that has no explanation."""


# ---------------------------------------------------------------------------------------------
# Feature names back to sensors


def describe_feature(
    name: str, sensors: Sequence[str], units: dict[str, str] | None = None
) -> dict[str, Any]:
    """``{"feature", "sensor", "window", "statistic", "unit"}`` of one feature column.

    ``sensor`` is the sensor's name, or the sensor kind for an aggregate over sensors
    (``temperature``, ``vibration``), or ``health_index``; a column this module does not know
    keeps its prefix as the sensor and ``statistic = "other"`` (never an error).
    """
    units = units or {}
    head, _, tail = name.partition("__")
    window = None
    if name in CONTEXT:
        return {"feature": name, "sensor": name, "window": None, "statistic": "value", "unit": ""}
    if head.startswith(SIGNATURE_PREFIX) and tail:
        # a failure-mode health indicator (the signature group): its mode is the "sensor", its
        # value a fraction of the mode's signature at failure (no unit)
        mode = head[len(SIGNATURE_PREFIX) :]
        m = _WINDOWED.match(tail)
        stat, window = (m["stat"], m["window"]) if m else (tail, None)
        sensor = "best-fitting failure mode" if mode == "best" else f"failure mode {mode}"
        return {"feature": name, "sensor": sensor, "window": window, "statistic": stat, "unit": ""}
    if head in sensors or head in AGGREGATES:
        sensor = head
        if not tail:
            stat = "index" if head == "health_index" else "value"
        else:
            m = _WINDOWED.match(tail)
            stat, window = (m["stat"], m["window"]) if m else (tail, None)
            if head == "health_index":
                stat = "slope" if stat == "slope" else stat
    else:
        sensor, stat = head, "other"
    if head in AGGREGATES and head != "health_index":
        unit = next((units[s] for s in sensors if s in units and _kind_hint(s, head)), "")
    else:
        unit = units.get(sensor, "")
    if stat in _UNITLESS or stat == "other":
        unit = "" if stat != "repeat_run" else "readings"
    elif stat == "slope" and unit:
        unit = f"{unit}/reading"
    return {"feature": name, "sensor": sensor, "window": window, "statistic": stat, "unit": unit}


def _kind_hint(sensor: str, kind: str) -> bool:
    return kind in sensor


def feature_descriptions(feature_names: Sequence[str], machine: dict[str, Any]) -> pd.DataFrame:
    """One row per feature column (see :func:`describe_feature`), in the model's order."""
    spec = parse_machine(machine)
    sensors = list(spec.sensor_names)
    units = {s.name: s.unit for s in spec.sensors}
    kinds = {s.name: s.kind for s in spec.sensors}
    rows = []
    for name in feature_names:
        d = describe_feature(name, sensors, units)
        if d["sensor"] in ("temperature", "vibration"):
            d["unit"] = next((units[s] for s in sensors if kinds[s] == d["sensor"]), d["unit"])
            if d["statistic"] in _UNITLESS:
                d["unit"] = ""
        rows.append(d)
    return pd.DataFrame(rows, columns=["feature", "sensor", "window", "statistic", "unit"])


# ---------------------------------------------------------------------------------------------
# Exact TreeSHAP from XGBoost


def _iteration_range(estimator: Any) -> tuple[int, int]:
    try:
        return (0, int(estimator.best_iteration) + 1)
    except AttributeError:
        return (0, 0)


def explained_family(model: dict[str, Any]) -> str:
    """The family of a model that has contributions (classification or regression)."""
    family = model.get("family")
    if family not in OUTPUT_SPACE or not hasattr(model.get("estimator"), "get_booster"):
        raise ExplainError(f"model family {family!r} has no contribution explanation")
    return family


def tree_contributions(model: dict[str, Any], x: np.ndarray) -> tuple[np.ndarray, float]:
    """(contributions (n, features), base value) of an XGBoost model on ``x`` (float32).

    Exact TreeSHAP from XGBoost itself, in the raw output space (log-odds or hours), over the
    trees the model predicts with (early stopping's best iteration included).
    """
    explained_family(model)
    estimator = model["estimator"]
    matrix = xgb.DMatrix(np.asarray(x, dtype=np.float32))
    out = estimator.get_booster().predict(
        matrix, pred_contribs=True, iteration_range=_iteration_range(estimator)
    )
    out = np.asarray(out, dtype=np.float64)
    if not len(out):  # XGBoost answers zero rows with a 1-D empty array
        return np.zeros((0, matrix.num_col())), 0.0
    return out[:, :-1], float(out[0, -1])


def raw_margin(model: dict[str, Any], x: np.ndarray) -> np.ndarray:
    """The model's raw output (log-odds or hours) as its own predict gives it."""
    return np.asarray(
        model["estimator"].predict(np.asarray(x, dtype=np.float32), output_margin=True),
        dtype=np.float64,
    )


_GROUPING_CACHE: dict[tuple, tuple] = {}


def _grouping(machine: dict[str, Any], names: tuple[str, ...]) -> tuple:
    """(feature records, sensors, feature-to-sensor matrix) of a model, cached per machine and
    feature list (the service explains one row per request: this must not be re-derived)."""
    key = (machine.get("machine_id"), names)
    if key not in _GROUPING_CACHE:
        desc = feature_descriptions(list(names), machine)
        sensor_of = desc["sensor"].to_numpy()
        sensors = list(dict.fromkeys(sensor_of))
        group = np.stack([(sensor_of == s) for s in sensors], axis=1).astype(np.float64)
        _GROUPING_CACHE[key] = (desc.to_dict("records"), sensors, group)
    return _GROUPING_CACHE[key]


def explain_rows(
    model: dict[str, Any],
    frame: pd.DataFrame,
    machine: dict[str, Any],
    top_n: int,
) -> list[dict[str, Any]]:
    """Top ``top_n`` factors (by |contribution|) and per-sensor sums of every row of ``frame``."""
    family = explained_family(model)
    names = list(model["feature_names"])
    x = frame[names].to_numpy(dtype=np.float32)
    contribs, base = tree_contributions(model, x)
    records, sensors, group = _grouping(machine, tuple(names))
    per_sensor = contribs @ group
    out = []
    for i in range(len(x)):
        order = np.argsort(-np.abs(contribs[i]), kind="stable")[:top_n]
        sens_order = np.argsort(-np.abs(per_sensor[i]), kind="stable")
        out.append(
            {
                "output_space": OUTPUT_SPACE[family],
                "base_value": base,
                "raw_prediction": base + float(contribs[i].sum()),
                "top_factors": [
                    {
                        **records[j],
                        "value": float(x[i, j]),
                        "contribution": float(contribs[i, j]),
                        "text": feature_text(records[j], float(x[i, j]), float(contribs[i, j])),
                    }
                    for j in order
                ],
                "per_sensor": {sensors[k]: float(per_sensor[i, k]) for k in sens_order},
            }
        )
    return out


def global_importance_per_sensor(
    model: dict[str, Any],
    frame: pd.DataFrame,
    machine,
    contributions: np.ndarray | None = None,
) -> dict:
    """Mean |contribution| per sensor (grouped) over the rows of ``frame``, largest first.

    ``contributions``: the model's contributions on those rows when already computed
    (:func:`tree_contributions`; TreeSHAP over every test row is the expensive part)."""
    names = list(model["feature_names"])
    contribs = contributions
    if contribs is None:
        contribs, _ = tree_contributions(model, frame[names].to_numpy(dtype=np.float32))
    desc = feature_descriptions(names, machine)
    grouped = pd.DataFrame(np.abs(contribs), columns=names).T.groupby(desc["sensor"].to_numpy())
    per_sensor = grouped.sum().T.mean().sort_values(ascending=False)
    return {k: float(v) for k, v in per_sensor.items()}


# ---------------------------------------------------------------------------------------------
# Anomaly: standardised deviations


def fit_reference(frame: pd.DataFrame, columns: Sequence[str]) -> dict[str, dict[str, float]]:
    """Per-column mean and standard deviation of a training reference (floored at 1e-9)."""
    x = frame[list(columns)].to_numpy(dtype=np.float64)
    mean = np.nanmean(x, axis=0)
    sd = np.maximum(np.nanstd(x, axis=0), 1e-9)
    return {
        c: {"mean": float(m), "sd": float(s)} for c, m, s in zip(columns, mean, sd, strict=True)
    }


def anomaly_deviations(
    reference: dict[str, dict[str, float]],
    row: dict[str, float] | pd.Series,
    machine: dict[str, Any],
    top_n: int,
) -> dict[str, Any]:
    """Each input's standardised deviation ``(value - mean) / sd`` from the training reference,
    the top ``top_n`` features and the per-sensor largest |deviation|, largest first."""
    names = list(reference)
    values = np.array([float(row[n]) for n in names])
    mean = np.array([reference[n]["mean"] for n in names])
    sd = np.array([reference[n]["sd"] for n in names])
    dev = (values - mean) / sd
    desc = feature_descriptions(names, machine).to_dict("records")
    order = np.argsort(-np.abs(dev), kind="stable")
    per_sensor: dict[str, float] = {}
    for j in order:
        per_sensor.setdefault(desc[j]["sensor"], float(dev[j]))
    return {
        "output_space": "standardised deviation from the training reference (not a SHAP sum)",
        "top_factors": [
            {**desc[j], "value": float(values[j]), "deviation": float(dev[j])}
            for j in order[:top_n]
        ],
        "per_sensor": per_sensor,
    }


# ---------------------------------------------------------------------------------------------
# Failure-mode diagnosis from the configured signatures


def mode_signatures(machine: dict[str, Any], baselines: dict[str, Any]) -> dict[str, np.ndarray]:
    """{mode: expected shift at failure per sensor, [level..., noise...]} from the config.

    Level in units of the sensor's fitted scale (``level * |nominal| / scale``), noise as the
    configured relative noise increase: the same units as :func:`row_deviations`.
    """
    spec = parse_machine(machine)
    out = {}
    for mode, fm in spec.failure_modes.items():
        level, noise = [], []
        for sensor in spec.sensors:
            sig = fm.signature.get(sensor.name)
            amp = abs(sensor.nominal) if sensor.nominal else (sensor.noise or 1.0)
            scale = float(baselines["sensors"][sensor.name]["scale"])
            level.append((sig.level if sig else 0.0) * amp / scale)
            noise.append(sig.noise if sig else 0.0)
        out[mode] = np.array(level + noise)
    return out


def fit_deviation_reference(
    train: pd.DataFrame, machine: dict[str, Any], baselines: dict[str, Any], diagnosis: dict
) -> dict[str, Any]:
    """Healthy training reference of the diagnosis inputs: the long-window mean of each sensor's
    z-score and the short-window std, on training rows more than ``healthy_rul_hours`` from
    failure (labels of the training split only)."""
    from pdm_kedro import contract as c  # noqa: PLC0415

    spec = parse_machine(machine)
    labels = [f"{h:g}h" for h in baselines["windows_hours"]]
    healthy = (
        train[train[c.RUL] > float(diagnosis["healthy_rul_hours"])] if c.RUL in train else train
    )
    if healthy.empty:
        healthy = train
    ref = {}
    for s in spec.sensor_names:
        ref[s] = {
            "mean": float(np.nanmedian(healthy[f"{s}__mean_{labels[-1]}"])),
            "std": float(max(np.nanmedian(healthy[f"{s}__std_{labels[-1]}"]), 1e-9)),
        }
    return {"sensors": ref, "long": labels[-1]}


def row_deviations(
    frame: pd.DataFrame, machine: dict[str, Any], baselines: dict, reference: dict
) -> np.ndarray:
    """(n, 2 * sensors) observed [level shift in scales..., relative noise increase...]."""
    spec = parse_machine(machine)
    long = reference["long"]
    level, noise = [], []
    for s in spec.sensor_names:
        scale = float(baselines["sensors"][s]["scale"])
        ref = reference["sensors"][s]
        level.append((frame[f"{s}__mean_{long}"].to_numpy(float) - ref["mean"]) / scale)
        noise.append(frame[f"{s}__std_{long}"].to_numpy(float) / ref["std"] - 1.0)
    return np.column_stack(level + noise)
