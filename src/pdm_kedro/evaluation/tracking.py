"""What a model family hands to MLflow: flat metrics and a registry entry (pure functions).

The MLflow calls themselves live in catalog datasets (kedro-mlflow's metric dataset and
:class:`pdm_kedro.datasets.mlflow_model_registry.MlflowModelRegistryDataset`), never in nodes.
"""

from __future__ import annotations

import re
from typing import Any

import pandas as pd

from pdm_kedro.contract import TIMESTAMP
from pdm_kedro.evaluation.report import frame_fingerprint
from pdm_kedro.families import get_family


def mlflow_metric_name(name: str) -> str:
    """A metric name MLflow accepts: ``mape[sensor]`` becomes ``mape.sensor``."""
    return re.sub(r"[^\w\-./ ]", "_", re.sub(r"\[(.*?)\]", r".\1", name))


def tracking_metrics(metrics: dict[str, Any]) -> dict[str, dict[str, float]]:
    """Test metrics and their baselines in kedro-mlflow's ``{name: {"value", "step"}}`` form.

    The catalog's ``prefix: "{machine}.{family}"`` turns ``f1`` into ``<machine>.<family>.f1``.
    """
    out: dict[str, dict[str, float]] = {}
    for row in metrics["metrics"]:
        name = mlflow_metric_name(row["metric"])
        if row["value"] is not None:
            out[name] = {"value": float(row["value"]), "step": 0}
        if row.get("baseline") is not None:
            out[f"baseline_{name}"] = {"value": float(row["baseline"]), "step": 0}
    return out


def trained_until(frame: pd.DataFrame) -> str | None:
    """The last timestamp of the data a model was fitted or tuned on (ISO), None if empty."""
    if not len(frame) or TIMESTAMP not in frame:
        return None
    return pd.to_datetime(frame[TIMESTAMP]).max().isoformat()


def headline_score(metrics: dict[str, Any]) -> tuple[str, float | None]:
    """The family's headline metric (``pdm_kedro.families``) and its test value.

    A family with one metric per sensor (``mape[<sensor>]``) is scored on the mean over its
    sensors.
    """
    name = get_family(metrics["family"]).headline
    values = {row["metric"]: row["value"] for row in metrics["metrics"]}
    per_sensor = [v for k, v in values.items() if k.startswith(f"{name}[") and v is not None]
    if name not in values and per_sensor:
        values[name] = float(sum(per_sensor) / len(per_sensor))
    if name not in values:
        raise KeyError(f"headline metric {name!r} is not among the {metrics['family']} metrics")
    return name, values[name]


def registration_entry(
    model: dict[str, Any],
    metrics: dict[str, Any],
    features_test: pd.DataFrame,
    features_val: pd.DataFrame,
    sensor_baselines: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The model, its metrics document and what the registry records beside it.

    ``trained_until`` (the end of the val split, the newest data the model was tuned on) lets
    promotion check that its evaluation data are new to the model; the test split's fingerprint
    and the headline score are recorded as version tags. ``sensor_baselines`` (the run's, which
    its features were built with) travel inside the registered model
    (``model["sensor_baselines"]``): a later run's promotion scores this model, once champion, on
    features rebuilt with them (:func:`pdm_kedro.promotion.champion_features`).
    """
    name, score = headline_score(metrics)
    return {
        "model": model
        if sensor_baselines is None
        else {**model, "sensor_baselines": sensor_baselines},
        "metrics": metrics,
        "family": metrics["family"],
        "machine_id": metrics["machine_id"],
        "score_name": name,
        "score": score,
        "test_fingerprint": frame_fingerprint(features_test, list(features_test.columns)),
        "trained_until": trained_until(features_val),
    }
