"""Prometheus metrics (prometheus-client) and the pure-ASGI middleware that records requests.

Label cardinality stays bounded: ``endpoint`` is the route template (``unmatched`` for any other
path), ``family`` one of the four families (or ``all`` / ``none``), ``machine`` only ever a served
machine id. Latency histograms have sub-millisecond buckets, so p50/p95/p99 of fast answers come
out of ``histogram_quantile``. With several workers the serve command sets
``PROMETHEUS_MULTIPROC_DIR`` and ``/metrics`` aggregates every worker's files.
"""

from __future__ import annotations

import math
import os
import time
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from pdm_kedro.families import family_names

LATENCY_BUCKETS = (
    0.0001,
    0.00025,
    0.0005,
    0.00075,
    0.001,
    0.0015,
    0.002,
    0.003,
    0.005,
    0.0075,
    0.01,
    0.015,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)
MULTIPROC = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
GAUGE_MODE = {"multiprocess_mode": "mostrecent"} if MULTIPROC else {}
FAMILIES = family_names()  # the families of pdm_kedro.families

REQUESTS = Counter(
    "pdm_http_requests",
    "HTTP requests by endpoint (route template), family and status code.",
    ["endpoint", "method", "family", "status"],
)
ERRORS = Counter(
    "pdm_http_request_errors",
    "HTTP requests answered with a 4xx or 5xx, by endpoint, family and status code.",
    ["endpoint", "method", "family", "status"],
)
LATENCY = Histogram(
    "pdm_http_request_duration_seconds",
    "Time from the request's first byte to the end of the response, by endpoint.",
    ["endpoint", "method"],
    buckets=LATENCY_BUCKETS,
)
PREDICTION_VALUES = {
    "classification": Histogram(
        "pdm_prediction_failure_probability",
        "Served failure probabilities (classification family).",
        ["machine"],
        buckets=(0.01, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 1.0),
    ),
    "regression": Histogram(
        "pdm_prediction_rul_hours",
        "Served remaining-useful-life predictions in hours (regression family).",
        ["machine"],
        buckets=(6, 12, 24, 48, 72, 96, 168, 250, 336, 500, 750, 1000, 2000),
    ),
    "anomaly": Histogram(
        "pdm_prediction_anomaly_score",
        "Served anomaly scores (higher = more anomalous).",
        ["machine"],
        buckets=(-2, -1, -0.5, -0.25, -0.1, 0, 0.1, 0.25, 0.5, 1, 2, 5, 10),
    ),
    "forecasting": Histogram(
        "pdm_prediction_forecast_zscore",
        "First forecast hour of each key sensor in training z-scores ((value - median) / scale).",
        ["machine"],
        buckets=(-5, -3, -2, -1, -0.5, 0, 0.5, 1, 2, 3, 5),
    ),
}
MODEL_INFO = Gauge(
    "pdm_model_info",
    "1 for the model version each machine and family is served from.",
    ["machine", "family", "registered_model", "served_version"],
    **GAUGE_MODE,
)
MODEL_REGISTRY_VERSION = Gauge(
    "pdm_model_registry_version",
    "MLflow registry version served per machine and family (when the bundle names one).",
    ["machine", "family"],
    **GAUGE_MODE,
)
MODEL_AGE = Gauge(
    "pdm_model_age_seconds",
    "Seconds since the served bundle was built, per machine and family.",
    ["machine", "family"],
    **GAUGE_MODE,
)
RELOADS = Counter("pdm_model_reloads", "Bundles swapped in after a change.", ["machine"])
SERVED_MACHINES = Gauge("pdm_served_machines", "Machines served.", **GAUGE_MODE)
JOBS = Counter("pdm_training_jobs", "Training jobs by outcome.", ["outcome"])
JOBS_ACTIVE = Gauge(
    "pdm_training_jobs_active", "Training jobs queued or running.", ["state"], **GAUGE_MODE
)


def record_models(machine: Any, previous: Any = None) -> None:
    """Set the version gauges of a machine just swapped in (and drop the old version's series)."""
    from pdm_kedro.service.registry import age_seconds  # noqa: PLC0415

    if previous is not None:
        RELOADS.labels(machine.machine_id).inc()
        for family, version in previous.versions.items():
            try:
                MODEL_INFO.remove(
                    machine.machine_id,
                    family,
                    version["registered_model"],
                    version["served_version"],
                )
            except KeyError:
                pass
    for family, version in machine.versions.items():
        MODEL_INFO.labels(
            machine.machine_id, family, version["registered_model"], version["served_version"]
        ).set(1)
        if version["registry_version"] and str(version["registry_version"]).isdigit():
            MODEL_REGISTRY_VERSION.labels(machine.machine_id, family).set(
                int(version["registry_version"])
            )
        age = age_seconds(machine.created_at)
        if age is not None:
            MODEL_AGE.labels(machine.machine_id, family).set(age)


def refresh_gauges(registry: Any, jobs: Any) -> None:
    """Gauges that move with time: model age, served machines, active jobs."""
    from pdm_kedro.service.registry import age_seconds  # noqa: PLC0415

    machines = dict(registry.machines)
    SERVED_MACHINES.set(len(machines))
    for machine in machines.values():
        age = age_seconds(machine.created_at)
        if age is not None:
            for family in machine.versions:
                MODEL_AGE.labels(machine.machine_id, family).set(age)
    if jobs is not None:
        counts = jobs.active_counts()
        for state in ("queued", "running"):
            JOBS_ACTIVE.labels(state).set(counts.get(state, 0))


def observe_prediction(machine: Any, answer: dict[str, Any]) -> None:
    """Record the served values of one answer in the per-family histograms."""
    machine_id = machine.machine_id
    failure = answer.get("failure")
    if failure is not None:
        _observe("classification", machine_id, failure["probability"])
    rul = answer.get("rul_hours")
    if rul is not None:
        _observe("regression", machine_id, rul["value"])
    anomaly = answer.get("anomaly")
    if anomaly is not None:
        _observe("anomaly", machine_id, anomaly["score"])
    forecast = answer.get("forecast")
    if forecast is not None:
        scales = {s["name"]: (s["median"], s["scale"]) for s in machine.manifest["sensors"]}
        for sensor, values in forecast["sensors"].items():
            first = values["forecast"][0] if values["forecast"] else None
            median, scale = scales.get(sensor, (0.0, 1.0))
            if first is not None and not math.isnan(first) and scale:
                PREDICTION_VALUES["forecasting"].labels(machine_id).observe(
                    (first - median) / scale
                )


def _observe(family: str, machine_id: str, value: Any) -> None:
    histogram = PREDICTION_VALUES[family].labels(machine_id)
    for v in value if isinstance(value, list) else [value]:
        if v is not None and not math.isnan(v):
            histogram.observe(float(v))


def render() -> tuple[bytes, str]:
    """The exposition text of this process (or of every worker in multiprocess mode)."""
    if MULTIPROC:
        from prometheus_client import multiprocess  # noqa: PLC0415

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(), CONTENT_TYPE_LATEST


def route_label(scope: dict[str, Any]) -> str:
    """The matched route's template, or ``unmatched`` (never the raw path)."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    return str(path) if path else "unmatched"


def family_label(scope: dict[str, Any], endpoint: str) -> str:
    """The family a prediction request asked for (``all`` for the four-answer endpoints)."""
    family = (scope.get("path_params") or {}).get("family")
    if family is not None:
        family = str(getattr(family, "value", family))
        return family if family in FAMILIES else "none"
    if "predict" in endpoint:
        return "all"
    return "none"


class MetricsMiddleware:
    """Pure ASGI middleware: latency histogram and request/error counters (no BaseHTTPMiddleware)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status_holder = [500]

        async def send_wrapper(message: dict) -> None:
            if message["type"] == "http.response.start":
                status_holder[0] = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            endpoint = route_label(scope)
            method = scope.get("method", "GET")
            status = status_holder[0]
            family = family_label(scope, endpoint)
            LATENCY.labels(endpoint, method).observe(time.perf_counter() - start)
            REQUESTS.labels(endpoint, method, family, str(status)).inc()
            if status >= 400:
                ERRORS.labels(endpoint, method, family, str(status)).inc()
