"""What a model family hands to MLflow: flat metrics and a registry entry (pure functions).

The MLflow calls themselves live in catalog datasets (kedro-mlflow's metric dataset and
:class:`pdm_kedro.datasets.mlflow_model_registry.MlflowModelRegistryDataset`), never in nodes.
"""

from __future__ import annotations

import re
from typing import Any

import pandas as pd

from pdm_kedro.evaluation.report import frame_fingerprint


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


def registration_entry(
    model: dict[str, Any],
    metrics: dict[str, Any],
    features_test: pd.DataFrame,
    registry: dict[str, Any],
) -> dict[str, Any]:
    """The model plus what the registry needs to decide on the ``champion`` alias.

    ``registry`` holds ``champion_metric`` and ``greater_is_better``. A family with one metric per
    sensor (``mape[<sensor>]``) is compared on the mean over its sensors (``champion_metric:
    mape``). The test split's fingerprint makes scores comparable only between versions scored on
    the same test data. ``input_example`` (one complete row of the model's feature columns, or
    None) shows MLflow the input format; it is stored with the logged model, never scored.
    """
    name = registry["champion_metric"]
    values = {row["metric"]: row["value"] for row in metrics["metrics"]}
    per_sensor = [v for k, v in values.items() if k.startswith(f"{name}[")]
    if name not in values and per_sensor:
        values[name] = float(sum(per_sensor) / len(per_sensor))
    if name not in values:
        raise KeyError(f"champion metric {name!r} is not among the family's metrics")
    names = [n for n in (model.get("feature_names") or []) if n in features_test.columns]
    example = features_test[names].dropna().head(1) if names else None
    return {
        "model": model,
        "input_example": example if example is not None and len(example) else None,
        "family": metrics["family"],
        "machine_id": metrics["machine_id"],
        "score_name": name,
        "score": values[name],
        "greater_is_better": bool(registry["greater_is_better"]),
        "test_fingerprint": frame_fingerprint(features_test, list(features_test.columns)),
    }
