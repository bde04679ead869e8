"""Export every model family of a machine to ONNX, prove parity, and describe the edge bundle."""

from __future__ import annotations

import json
import logging
import os
from datetime import UTC, datetime
from typing import Any

import numpy as np
import onnx
import pandas as pd

import pdm_kedro
from pdm_kedro import contract as c
from pdm_kedro.contract import feature_columns
from pdm_kedro.core.degradation_features import (
    history_rows,
    needs_episode_start,
    settings_feature_names,
)
from pdm_kedro.core.window_features import feature_names as window_feature_names
from pdm_kedro.core.window_features import window_labels
from pdm_kedro.edge.bundle import FORMAT_VERSION, INPUT_NAME, sha256_hex
from pdm_kedro.edge.explain import EXPLANATION_FILE
from pdm_kedro.edge.features import REGIME_CODE
from pdm_kedro.edge.manifest import seal_manifest, validate_manifest
from pdm_kedro.evaluation.parity import decision_agreement
from pdm_kedro.families import get_family
from pdm_kedro.fleet import parse_machine

from .converters import (
    CLASSIFIER_OUTPUT,
    DETECTOR_OUTPUT,
    REGRESSOR_OUTPUT,
    run_onnx,
    sklearn_to_onnx,
    with_metadata,
    xgboost_to_onnx,
)

logger = logging.getLogger(__name__)

UNKNOWN_REGIME_CODE = -1


class EdgeParityError(AssertionError):
    """ONNX and native outputs differ beyond tolerance (names machine, family and worst row)."""


def handle_parity_failure(
    message: str, family: str, edge_export: dict[str, Any], report: dict[str, Any]
) -> dict[str, Any]:
    """Raise :class:`EdgeParityError`, or (``parity.on_failure[family] == "warn"``) log the
    failure and return the report marked ``passed: false`` (the manifest and the edge answers
    then carry the warning)."""
    mode = edge_export["parity"].get("on_failure", {}).get(family, "raise")
    if mode != "warn":
        raise EdgeParityError(message)
    logger.error("%s (parity.on_failure.%s = warn: exported anyway)", message, family)
    return report | {"passed": False, "failure": message}


def tolerances(edge_export: dict[str, Any]) -> dict[str, float]:
    """The numeric parity tolerances of the parameters."""
    return {k: float(v) for k, v in edge_export["parity"].items() if isinstance(v, int | float)}


def _metadata(model: dict[str, Any], machine_id: str) -> dict[str, Any]:
    props = {
        "machine_id": machine_id,
        "family": model["family"],
        "feature_names": list(model["feature_names"]),
        "input_name": INPUT_NAME,
        "pdm_kedro_version": pdm_kedro.__version__,
    }
    for key in ("threshold", "horizon_hours", "rul_cap_hours", "detector"):
        if key in model:
            props[key] = model[key]
    return props


def baselines_fingerprint(baselines: dict[str, Any] | None) -> str | None:
    """sha256 of the sensor baselines' canonical JSON (None for none): which constants a model's
    features were built with."""
    if baselines is None:
        return None
    return sha256_hex(json.dumps(baselines, sort_keys=True).encode("utf-8"))


def production_parts(
    package: dict[str, Any],
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """The production package's model, metrics document and registry fields
    (``registered_model``, ``registry_version``)."""
    registry = {
        "registered_model": package.get("registered_model"),
        "registry_version": package.get("registry_version"),
    }
    return package["model"], package.get("metrics") or {}, registry


def _is_xgboost(estimator: Any) -> bool:
    return type(estimator).__module__.split(".")[0] == "xgboost"


def export_to_onnx(
    model: dict[str, Any], machine: dict[str, Any], edge_export: dict[str, Any]
) -> onnx.ModelProto:
    """ONNX graph of one family's native model, with its feature names and settings as metadata.

    XGBoost estimators go through onnxmltools, scikit-learn ones (the anomaly detector) through
    skl2onnx. The graph's single input is ``features`` (float32, n x len(feature_names)).
    """
    spec = parse_machine(machine)
    family = model["family"]
    n_features = len(model["feature_names"])
    opsets = edge_export["onnx"]
    if get_family(family).export != "feature_matrix":
        raise ValueError(f"{spec.machine_id}: {family} is not exported from a feature matrix")
    if _is_xgboost(model["estimator"]):
        graph = xgboost_to_onnx(model["estimator"], n_features, opsets["xgboost_opset"])
    else:
        graph = sklearn_to_onnx(model["estimator"], n_features, opsets["sklearn_opsets"])
    doc = f"{spec.machine_id} {family} model ({spec.manufacturer} {spec.model}), pdm_kedro"
    exported = with_metadata(graph, _metadata(model, spec.machine_id), doc)
    logger.info("%s/%s: exported to ONNX (%d bytes)", spec.machine_id, family, exported.ByteSize())
    return exported


def _native_and_onnx(
    model: dict[str, Any], onnx_model: onnx.ModelProto, x: np.ndarray
) -> tuple[np.ndarray, np.ndarray, float | None]:
    """(native output, onnx output, decision threshold) for the family's answer on ``x``."""
    kind = get_family(model["family"]).answer_kind
    estimator = model["estimator"]
    if kind == "probability":
        native = estimator.predict_proba(x)[:, 1]
        exported = run_onnx(onnx_model, x, CLASSIFIER_OUTPUT)[:, 1]
        return native, exported, float(model["threshold"])
    if kind == "value":
        native = estimator.predict(x)
        exported = run_onnx(onnx_model, x, onnx_output(kind)).reshape(-1)
        return native, exported, None
    if kind == "score":
        native = -estimator.decision_function(x)
        exported = -run_onnx(onnx_model, x, DETECTOR_OUTPUT).reshape(-1)
        return native, exported, float(model["threshold"])
    raise ValueError(f"no parity check for model family {model['family']!r} ({kind})")


def onnx_output(kind: str) -> str:
    """The ONNX output carrying a feature-matrix family's answer, by its kind."""
    return {"probability": CLASSIFIER_OUTPUT, "value": REGRESSOR_OUTPUT, "score": DETECTOR_OUTPUT}[
        kind
    ]


def _tolerance(model: dict[str, Any], parity: dict[str, Any], native: np.ndarray) -> np.ndarray:
    kind = get_family(model["family"]).answer_kind
    if kind == "probability":
        return np.full(native.shape, float(parity["probability_atol"]))
    if kind == "value":  # float32 error scales with the partial sums, i.e. the target scale
        scale = np.maximum(np.abs(native), float(model.get("rul_cap_hours", 0.0)))
        return float(parity["rul_atol"]) + float(parity["rul_rtol"]) * scale
    return np.full(native.shape, float(parity["anomaly_score_atol"]))


def check_onnx_parity(
    model: dict[str, Any],
    onnx_model: onnx.ModelProto,
    features_test: pd.DataFrame,
    machine: dict[str, Any],
    edge_export: dict[str, Any],
) -> dict[str, Any]:
    """Compare ONNX and native outputs on every test row; raise if any row is out of tolerance.

    Both models get the same float32 matrix (the serving dtype). Probabilities within
    ``probability_atol``; RUL within ``rul_atol + rul_rtol * max(|native|, rul_cap_hours)``
    (float32 sums over hundreds of trees: the rounding follows the partial sums, which reach
    the target's scale even when the final RUL is small); anomaly scores within
    ``anomaly_score_atol``; decisions (probability >= threshold, score >= threshold) identical.

    Raises:
        EdgeParityError: naming machine, family, the worst row (episode and timestamp) and values.
    """
    spec = parse_machine(machine)
    family = model["family"]
    x = features_test[list(model["feature_names"])].to_numpy(dtype=np.float32)
    native, exported, threshold = _native_and_onnx(model, onnx_model, x)
    native = np.asarray(native, dtype=np.float64)
    exported = np.asarray(exported, dtype=np.float64)
    diff = np.abs(native - exported)
    tolerance = _tolerance(model, edge_export["parity"], native)
    worst = int(np.argmax(diff - tolerance)) if len(diff) else 0
    agreement = decision_agreement(native, exported, threshold)
    mismatched = agreement["mismatched"]
    report = {
        "family": family,
        "split": "test",
        "rows": len(x),
        "max_abs_diff": float(diff.max()) if len(diff) else 0.0,
        "worst_row": worst,
        "tolerance": tolerances(edge_export),
        "decisions_compared": threshold is not None,
        "mismatched_decisions": int(mismatched.size),
        # flips of scores within float32 rounding of the threshold: agreeing (issue 18)
        "decision_ties_at_threshold": int(agreement["ties"].size),
        "passed": True,
    }
    failing = len(diff) and diff[worst] > tolerance[worst]
    if failing or mismatched.size:
        row = int(mismatched[0]) if not failing else worst
        where = features_test.iloc[row]
        message = (
            f"ONNX parity failed for machine {spec.machine_id}, family {family}: worst test row "
            f"{row} (episode {where.get(c.EPISODE)}, timestamp {where.get(c.TIMESTAMP)}): native "
            f"{native[row]:.8g}, onnx {exported[row]:.8g}, |diff| {diff[row]:.3g} "
            f"(tolerance {tolerance[row]:.3g}); {mismatched.size} decisions differ "
            f"(threshold {threshold})."
        )
        return handle_parity_failure(message, family, edge_export, report)
    logger.info(
        "%s/%s: ONNX parity on %d test rows, max |diff| %.3g",
        spec.machine_id,
        family,
        len(x),
        report["max_abs_diff"],
    )
    return report


def describe_for_edge(
    model: dict[str, Any],
    onnx_model: onnx.ModelProto,
    metrics: dict[str, Any],
    parity: dict[str, Any],
    registry: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The manifest entry of one family: file, sha256, version, inputs, outputs, thresholds,
    how the runtime answers with it, the registry version it was built from, training metrics
    and the parity result."""
    family = model["family"]
    spec = get_family(family)
    data = onnx_model.SerializeToString()
    digest = sha256_hex(data)
    entry: dict[str, Any] = {
        "family": family,
        "file": f"{family}.onnx",
        "sha256": digest,
        "size_bytes": len(data),
        "version": digest[:12],
        "opsets": {op.domain or "ai.onnx": int(op.version) for op in onnx_model.opset_import},
        "input_name": INPUT_NAME,
        "feature_names": list(model["feature_names"]),
    }
    # the constants the model's features were built with (models registered since they are
    # recorded): the manifest compares them with the bundle's (feature_constants_match)
    trained_with = baselines_fingerprint(model.get("sensor_baselines"))
    if trained_with is not None:
        entry["sensor_baselines_sha256"] = trained_with
    registry = registry or {}
    entry["registered_model"] = registry.get("registered_model")
    version = registry.get("registry_version")
    entry["registry_version"] = None if version is None else str(version)
    entry["answer"] = {
        "key": spec.answer_key,
        "kind": spec.answer_kind,
        "fields": dict(spec.answer_fields),
    }
    if spec.answer_kind in ("probability", "value", "score"):
        entry["output"] = onnx_output(spec.answer_kind)
    if spec.answer_kind == "probability":
        entry |= {"positive_column": 1, "threshold": float(model["threshold"])}
    elif spec.answer_kind == "score":
        entry |= {
            "score_sign": -1.0,  # score = -decision_function: higher = more anomalous
            "threshold": float(model["threshold"]),
        }
    for key in spec.answer_fields.values():
        value = model.get(key)  # None: not set by the model (e.g. trained before the field existed)
        entry[key] = float(value) if isinstance(value, int | float) else value
    entry["hyperparameters"] = metrics.get("model", {})
    entry["metrics"] = {
        "split": metrics.get("split"),
        "n_rows": metrics.get("n_rows"),
        "test": metrics.get("metrics", []),
        "val": metrics.get("val_metrics", {}),
    }
    entry["parity"] = parity
    return entry


def required_history_rows(windows_rows: list[int]) -> int:
    """Rows the edge needs for the last row's features to equal training's.

    The longest window ``W`` feeds the health index (a W-row mean), whose W-row slope is also a
    feature: the last row therefore depends on the ``2 W - 1`` rows before and including it.
    """
    return 2 * max(int(w) for w in windows_rows) - 1


def export_time() -> str:
    """UTC export time; ``SOURCE_DATE_EPOCH`` (the reproducible-builds convention) fixes it, so
    that two identical runs write byte-identical manifests."""
    fixed = os.environ.get("SOURCE_DATE_EPOCH", "").strip()
    when = datetime.fromtimestamp(int(fixed), UTC) if fixed.isdigit() else datetime.now(UTC)
    return when.isoformat(timespec="seconds")


def build_edge_manifest(
    machine: dict[str, Any],
    sensor_baselines: dict[str, Any],
    features_test: pd.DataFrame,
    validation: dict[str, Any],
    *family_entries: dict[str, Any],
) -> dict[str, Any]:
    """The bundle's ``manifest.json`` without an explanation file (see
    :func:`build_edge_manifest_with_explanation`, what the pipeline runs)."""
    return _edge_manifest(
        machine, sensor_baselines, features_test, validation, None, family_entries
    )


def build_edge_manifest_with_explanation(
    machine: dict[str, Any],
    sensor_baselines: dict[str, Any],
    features_test: pd.DataFrame,
    validation: dict[str, Any],
    explanation: str,
    *family_entries: dict[str, Any],
) -> dict[str, Any]:
    """The bundle's ``manifest.json``, listing ``explanation.json`` (the text the
    ``edge_explanation`` dataset writes) with its sha256 and size, like a model file."""
    return _edge_manifest(
        machine, sensor_baselines, features_test, validation, explanation, family_entries
    )


def check_feature_constants(
    machine_id: str, entry: dict[str, Any], bundle_fingerprint: str | None
) -> dict[str, Any]:
    """The entry with ``feature_constants_match``: whether its model was trained on features
    built with the bundle's sensor baselines (``bundle_fingerprint``, :func:`baselines_fingerprint`
    of them; unknown, no key, for a model registered before its
    baselines were recorded). A mismatch (a plain ``kedro run`` that fitted new baselines and
    kept this family's champion) is logged, and the runtime warns on every answer: the model
    gets inputs scaled unlike its training."""
    trained_with = entry.get("sensor_baselines_sha256")
    if trained_with is None:
        return entry
    match = trained_with == bundle_fingerprint
    if not match:
        logger.warning(
            "%s/%s: the production model (registry version %s) was trained on features built "
            "with other sensor baselines than this bundle's; its answers are computed from "
            "inputs scaled unlike its training. Retrain it (a retraining run keeps the served "
            "baselines) or promote this run's model.",
            machine_id,
            entry["family"],
            entry.get("registry_version"),
        )
    return entry | {"feature_constants_match": match}


def _edge_manifest(
    machine: dict[str, Any],
    sensor_baselines: dict[str, Any],
    features_test: pd.DataFrame,
    validation: dict[str, Any],
    explanation: str | None,
    family_entries: tuple[dict[str, Any], ...],
) -> dict[str, Any]:
    """The bundle's ``manifest.json``: everything the edge runtime needs besides the ONNX files.

    Sensors (order, units, kinds, fitted median/scale), regime codes, windows, feature order,
    input checks, and one entry per family (file, sha256, thresholds, metrics, parity).

    Raises:
        ValueError: if the feature table's columns differ from what ``episode_features`` makes
            (the edge would compute other features than the models were trained on).
    """
    spec = parse_machine(machine)
    sensors = spec.sensor_names
    kinds = [sensor_baselines["sensors"][s]["kind"] for s in sensors]
    labels = window_labels(sensor_baselines["windows_hours"])
    window_names = window_feature_names(sensors, kinds, labels, sensor_baselines["statistics"])
    degradation = sensor_baselines.get("degradation") or {}
    if needs_episode_start(degradation):
        raise ValueError(
            f"{spec.machine_id}: features.degradation.groups has 'episode' (hours since repair, "
            "post-repair shifts): the edge runtime does not receive the last repair's time, so "
            "these features cannot be exported; drop 'episode' for a deployable bundle."
        )
    window_names += settings_feature_names(sensors, degradation)
    names = [REGIME_CODE, *window_names]
    trained = feature_columns(features_test)
    if trained != names:
        raise ValueError(
            f"{spec.machine_id}: feature table columns differ from the edge feature definition "
            f"(only in table: {sorted(set(trained) - set(names))}, only at the edge: "
            f"{sorted(set(names) - set(trained))}, or the order differs)."
        )
    fingerprint = baselines_fingerprint(sensor_baselines)
    family_entries = tuple(
        check_feature_constants(spec.machine_id, entry, fingerprint) for entry in family_entries
    )
    for entry in family_entries:
        unknown = sorted(set(entry.get("feature_names", [])) - set(names))
        if unknown:
            raise ValueError(
                f"{spec.machine_id}/{entry['family']}: model inputs {unknown} are not features "
                "the edge computes."
            )
    min_rows = max(
        required_history_rows(sensor_baselines["window_rows"]), history_rows(degradation)
    )
    ranges = {sensor.name: sensor for sensor in spec.sensors}
    manifest = {
        "format_version": FORMAT_VERSION,
        "machine_id": spec.machine_id,
        "machine": {
            "category": spec.category,
            "manufacturer": spec.manufacturer,
            "model": spec.model,
        },
        "created_at": export_time(),
        "producer": {"package": "pdm_kedro", "version": pdm_kedro.__version__},
        "sampling_interval_min": spec.sampling_interval_min,
        "sensors": [
            {
                "name": s,
                "unit": sensor_baselines["sensors"][s]["unit"],
                "kind": sensor_baselines["sensors"][s]["kind"],
                "median": float(sensor_baselines["sensors"][s]["median"]),
                "scale": float(sensor_baselines["sensors"][s]["scale"]),
                # the configured physical range: the edge refuses readings outside it
                "min": float(ranges[s].min),
                "max": float(ranges[s].max),
            }
            for s in sensors
        ],
        "preprocessing": {
            "fitted_on": sensor_baselines.get("fitted_on"),
            "missing_readings": "forward-filled from the same sensor's last reading",
            "zscore": "(reading - median) / scale",
            "sensor_baselines_sha256": fingerprint,
            # per-operating-condition z-scores applied to the readings first (fitted on train)
            **(
                {"condition_scaling": sensor_baselines["condition_scaling"]}
                if sensor_baselines.get("condition_scaling")
                else {}
            ),
        },
        "regimes": {
            "codes": {name: i for i, name in enumerate(sensor_baselines["regimes"])},
            "unknown_code": UNKNOWN_REGIME_CODE,
        },
        "windows": {
            "hours": list(sensor_baselines["windows_hours"]),
            "rows": [int(w) for w in sensor_baselines["window_rows"]],
            "labels": labels,
            "statistics": list(sensor_baselines["statistics"]),
            **({"degradation": degradation} if degradation.get("groups") else {}),
        },
        "window_feature_names": window_names,
        "feature_names": names,
        "inputs": {
            "timestamp_column": c.TIMESTAMP,
            "regime_column": c.REGIME,
            "ignored_columns": [c.EPISODE, *c.LABEL_COLUMNS],
            "max_missing_run": int(validation["max_null_run"]),
            "min_history_rows": min_rows,
            "min_history_hours": min_rows * spec.sampling_interval_min / 60.0,
        },
        "models": {entry["family"]: entry for entry in family_entries},
    }
    if explanation is not None:
        data = explanation.encode("ascii")
        manifest["explanation"] = {
            "file": EXPLANATION_FILE,
            "sha256": sha256_hex(data),
            "size_bytes": len(data),
        }
    return seal_manifest(validate_manifest(manifest))
