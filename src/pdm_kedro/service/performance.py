"""Model performance: headline metrics beside baselines, from the manifest and from MLflow.

``GET /v1/machines`` shows the served bundle's test metrics (the manifest records each with its
baseline). ``GET /v1/machines/{id}/performance`` lists every registered version of each family
from the MLflow registry (``<machine>-<family>``), with the run's ``<machine>.<family>.<metric>``
and ``baseline_<metric>`` values, its aliases and the promotion rule's ``promotion_decision`` tag.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from typing import Any

from pdm_kedro.paths import mlflow_tracking_uri
from pdm_kedro.service.errors import ServiceError

LOWER_IS_BETTER = (
    "rmse",
    "mae",
    "nasa_score",
    "false_alarm_rate",
    "missed_alarm_rate",
    "mape",
    "smape",
    "mase",
)
CACHE_SECONDS = 15.0


def lower_is_better(metric: str) -> bool:
    """Direction of a metric name (``mape[sensor]`` / ``mape.sensor`` count as ``mape``)."""
    base = metric.split("[", maxsplit=1)[0].split(".", maxsplit=1)[0]
    return base in LOWER_IS_BETTER


def metric_row(metric: str, value: Any, baseline: Any, baseline_name: Any = None) -> dict:
    """One metric beside its baseline, with whether the model beats it."""
    beats = None
    if value is not None and baseline is not None:
        beats = value < baseline if lower_is_better(metric) else value > baseline
    return {
        "metric": metric,
        "value": None if value is None else float(value),
        "baseline": None if baseline is None else float(baseline),
        "baseline_name": baseline_name,
        "beats_baseline": beats,
    }


def manifest_summary(machine: Any) -> dict[str, Any]:
    """Each family's served version and test metrics beside baselines (from the manifest)."""
    out = {}
    for family in machine.families:
        entry = machine.manifest["models"][family]
        rows = [
            metric_row(r["metric"], r.get("value"), r.get("baseline"), r.get("baseline_name"))
            for r in (entry.get("metrics") or {}).get("test", [])
        ]
        out[family] = {
            "version": machine.versions[family],
            "metrics": rows,
            "loses_to_baseline": [r["metric"] for r in rows if r["beats_baseline"] is False],
        }
    return out


class PerformanceReader:
    """MLflow registry reads, cached for a few seconds per machine (they take tens of ms)."""

    def __init__(self) -> None:
        self._cache: dict[str, tuple[float, dict[str, Any]]] = {}
        self._lock = threading.Lock()

    def read(self, machine: Any) -> dict[str, Any]:
        """The performance answer of one served machine (blocking: call from a ``def`` route)."""
        key = f"{machine.machine_id}:{machine.manifest_sha256}"
        with self._lock:
            hit = self._cache.get(key)
            if hit is not None and time.monotonic() - hit[0] < CACHE_SECONDS:
                return hit[1]
        answer = self._read(machine)
        with self._lock:
            self._cache[key] = (time.monotonic(), answer)
        return answer

    def _read(self, machine: Any) -> dict[str, Any]:
        from mlflow import MlflowClient  # noqa: PLC0415
        from mlflow.exceptions import MlflowException  # noqa: PLC0415

        uri = mlflow_tracking_uri()
        client = MlflowClient(tracking_uri=uri)
        families: dict[str, Any] = {}
        runs: dict[str, Any] = {}
        for family in machine.families:
            served = machine.versions[family]
            name = served["registered_model"]
            try:
                versions = client.search_model_versions(f"name='{name}'")
            except MlflowException as err:
                raise ServiceError(
                    404,
                    "registry_unavailable",
                    f"MLflow registry at {uri} cannot list {name}: {err.message}",
                ) from None
            try:  # search_model_versions leaves aliases empty: the registered model has them
                aliases = dict(client.get_registered_model(name).aliases or {})
            except MlflowException:
                aliases = {}
            rows = []
            for version in sorted(versions, key=lambda v: int(v.version)):
                metrics = {}
                if version.run_id:
                    if version.run_id not in runs:
                        try:
                            runs[version.run_id] = client.get_run(version.run_id).data.metrics
                        except MlflowException:
                            runs[version.run_id] = {}
                    metrics = runs[version.run_id]
                prefix = f"{machine.machine_id}.{family}."
                own = {
                    k.removeprefix(prefix): v
                    for k, v in metrics.items()
                    if k.startswith(prefix) and not k.removeprefix(prefix).startswith("baseline_")
                }
                score = version.tags.get("score")
                rows.append(
                    {
                        "version": str(version.version),
                        "aliases": sorted(
                            a for a, v in aliases.items() if str(v) == str(version.version)
                        ),
                        "created_at": datetime.fromtimestamp(
                            version.creation_timestamp / 1000, UTC
                        ).isoformat(timespec="seconds"),
                        "run_id": version.run_id,
                        "champion_decision": version.tags.get("promotion_decision"),
                        "score_name": version.tags.get("score_name"),
                        "score": None if score in (None, "None") else float(score),
                        "metrics": [
                            metric_row(m, v, metrics.get(f"{prefix}baseline_{m}"))
                            for m, v in sorted(own.items())
                        ],
                    }
                )
            families[family] = {
                "registered_model": name,
                "served_version": served["served_version"],
                "versions": rows,
            }
        return {"machine_id": machine.machine_id, "tracking_uri": uri, "families": families}
