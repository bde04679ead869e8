"""The FastAPI application: routes, guards, lifespan (bundle loading, watcher, job queue).

Model calls run in ``def`` routes (FastAPI's threadpool; onnxruntime releases the GIL), never in
an ``async def``. The guards (key, scope, rate limit) are ``async`` because they only hash a key
and count in memory.
"""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Body, Depends, FastAPI, Query
from fastapi.responses import JSONResponse, Response

from pdm_kedro.service import dashboard, metrics, monitoring_metrics
from pdm_kedro.service.auth import KeyConfigError, KeyStore, Principal, load_keys
from pdm_kedro.service.config import ServiceConfig, load_config, load_credential_keys
from pdm_kedro.service.errors import ServiceError, install_handlers, unknown_machine
from pdm_kedro.service.fastjson import OrjsonRoute
from pdm_kedro.service.inference import answer, check_rows
from pdm_kedro.service.jobs import JobManager
from pdm_kedro.service.performance import PerformanceReader, manifest_summary
from pdm_kedro.service.registry import ModelRegistry, ServedMachine
from pdm_kedro.service.schemas import (
    BatchRequest,
    BatchResponse,
    ErrorResponse,
    Family,
    Health,
    JobAccepted,
    JobStatus,
    MachinesResponse,
    PerformanceResponse,
    Prediction,
    PredictRequest,
    TrainingRequest,
)
from pdm_kedro.service.security import BodyLimitMiddleware, RateLimiter, require

logger = logging.getLogger(__name__)

ERRORS = {
    code: {"model": ErrorResponse, "description": text}
    for code, text in {
        401: "missing or unknown API key",
        403: "the key lacks the endpoint's scope",
        404: "unknown machine, family or job (the known machines are listed)",
        413: "body, rows or batch items above the configured limits",
        422: "readings or parameters the models cannot answer from",
        429: "rate limit or job queue full (see Retry-After)",
        503: "the models are still loading",
    }.items()
}


EXPLAIN_QUERY = Query(
    description=(
        "explain the last row's answers with the top N factors (1 to the model's inputs): "
        "TreeSHAP contributions (classification in log-odds, RUL in hours) with the base value "
        "and per-sensor sums, the anomaly inputs' standardised deviations, and the failure-mode "
        "diagnosis with its action. Costs more of the key's rate limit than a plain request."
    ),
)
Explain = Annotated[int | None, EXPLAIN_QUERY]

PREDICT_GUARD = require("predict")
ADMIN_GUARD = require("admin")
PredictKey = Annotated[Principal, Depends(PREDICT_GUARD)]
AdminKey = Annotated[Principal, Depends(ADMIN_GUARD)]


@dataclass
class ServiceState:
    """What the routes share."""

    config: ServiceConfig
    keys: KeyStore
    rate_limiter: RateLimiter
    registry: ModelRegistry
    jobs: JobManager | None
    performance: PerformanceReader


def _served(state: ServiceState, machine_id: str) -> ServedMachine:
    if not state.registry.report.initial_scan_done:
        raise ServiceError(
            503,
            "not_ready",
            "The service is still loading and warming the models; retry in a few seconds.",
            headers={"Retry-After": "2"},
        )
    machine = state.registry.get(machine_id)
    if machine is None:
        raise unknown_machine(machine_id, state.registry.known())
    return machine


def _machine_info(machine: ServedMachine) -> dict[str, Any]:
    manifest = machine.manifest
    return {
        "machine_id": machine.machine_id,
        "families": machine.families,
        "bundle_version": machine.bundle_version,
        "trained_at": machine.created_at,
        "loaded_at": machine.loaded_at,
        "sampling_interval_min": float(manifest["sampling_interval_min"]),
        "min_history_rows": int(manifest["inputs"]["min_history_rows"]),
        "min_history_hours": float(manifest["inputs"]["min_history_hours"]),
        "regimes": sorted(manifest["regimes"]["codes"]),
        "sensors": [{"name": s["name"], "unit": s["unit"]} for s in manifest["sensors"]],
        "models": manifest_summary(machine),
    }


def create_app(
    config: ServiceConfig | None = None, keys: KeyStore | None = None, *, start_jobs: bool = True
) -> FastAPI:
    """The service app (``uvicorn --factory pdm_kedro.service.app:create_app``)."""
    config = config or load_config()
    if keys is None:
        keys = load_keys(load_credential_keys(config))
    if not len(keys):
        raise KeyConfigError(
            "No API keys configured: set PDM_API_KEYS ('key:scope' pairs, comma separated) or "
            "pdm_service_api_keys in conf/local/credentials.yml (see docs/serving.md)."
        )
    registry = ModelRegistry(
        config.models_root, config.reload_poll_seconds, on_swap=metrics.record_models
    )
    state = ServiceState(
        config=config,
        keys=keys,
        rate_limiter=RateLimiter(config.rate_limits.model_dump()),
        registry=registry,
        jobs=None,
        performance=PerformanceReader(),
    )

    @asynccontextmanager
    async def lifespan(_app: FastAPI):  # noqa: ANN202
        registry.start()
        if start_jobs:
            state.jobs = JobManager(config.state_dir, config, registry)
        try:
            yield
        finally:
            registry.stop()
            if state.jobs is not None:
                state.jobs.stop()

    app = FastAPI(
        title="pdm_kedro prediction and training service",
        version="1",
        description=(
            "Production (champion) models of every machine, served from their edge bundles with "
            "the edge runtime's own feature code. Send the API key in the X-API-Key header."
        ),
        lifespan=lifespan,
    )
    app.router.route_class = OrjsonRoute  # request bodies parsed by orjson (fastjson.py)
    app.state.service = state
    install_handlers(app)
    app.add_middleware(BodyLimitMiddleware, max_bytes=config.limits.max_body_bytes)
    app.add_middleware(metrics.MetricsMiddleware)

    # -- health ----------------------------------------------------------------------------------
    @app.get("/health/live", response_model=Health, tags=["health"])
    async def live() -> dict[str, Any]:
        """The process answers."""
        return {"status": "ok", "machines": len(registry.machines)}

    @app.get(
        "/health/ready",
        response_model=Health,
        responses={503: {"model": Health, "description": "loading or a bundle failed"}},
        tags=["health"],
    )
    async def ready() -> Any:
        """200 once every bundle found is loaded and warmed (503 before, naming failures)."""
        machines = dict(registry.machines)
        body = {
            "machines": len(machines),
            "models": sum(len(m.families) for m in machines.values()),
            "failures": dict(registry.report.failures),
        }
        if registry.ready:
            return {"status": "ok", **body}
        status = "loading" if not registry.report.initial_scan_done else "not ready"
        return JSONResponse({"status": status, **body}, status_code=503)

    # -- machines and predictions ----------------------------------------------------------------
    @app.get("/v1/machines", response_model=MachinesResponse, responses=ERRORS, tags=["models"])
    def machines(_key: PredictKey) -> dict[str, Any]:
        """Every served machine: families, versions, trained-at, metrics beside baselines."""
        if not registry.report.initial_scan_done:
            _served(state, "")
        current = dict(registry.machines)
        return {"machines": [_machine_info(current[m]) for m in sorted(current)]}

    def _predict(
        machine_id: str,
        request: PredictRequest,
        families: list[str] | None,
        explain: int | None = None,
        key: Principal | None = None,
    ) -> dict[str, Any]:
        if explain is not None and key is not None:  # the guard counted one hit already
            cost = config.explanations.rate_limit_cost
            if cost > 1:
                state.rate_limiter.check(key, "predict", cost=cost - 1, request_cost=cost)
        machine = _served(state, machine_id)
        check_rows(request.readings, config.limits.max_rows, machine_id)
        result = answer(
            machine,
            request.readings,
            families=families,
            all_rows=request.all_rows,
            from_episode_start=request.from_episode_start,
            explain=explain,
        )
        metrics.observe_prediction(machine, result)
        return result

    @app.post(
        "/v1/machines/{machine_id}/predict",
        response_model=Prediction,
        responses=ERRORS,
        tags=["predict"],
    )
    def predict_all(
        machine_id: str, request: PredictRequest, key: PredictKey, explain: Explain = None
    ) -> dict[str, Any]:
        """All four answers: failure probability and decision, RUL, anomaly, 24 h forecast
        (``?explain=N``: and why, for the last row)."""
        return _predict(machine_id, request, None, explain, key)

    @app.post(
        "/v1/machines/{machine_id}/predict/{family}",
        response_model=Prediction,
        responses=ERRORS,
        tags=["predict"],
    )
    def predict_family(
        machine_id: str,
        family: Family,
        request: PredictRequest,
        key: PredictKey,
        explain: Explain = None,
    ) -> dict[str, Any]:
        """One family's answer (the same features; only that family's model runs);
        ``?explain=N`` explains it (not forecasting: 422)."""
        return _predict(machine_id, request, [family.value], explain, key)

    @app.post("/v1/predict/batch", response_model=BatchResponse, responses=ERRORS, tags=["predict"])
    def predict_batch(request: BatchRequest, _key: PredictKey) -> dict[str, Any]:
        """Many machines or windows in one request; each item gets its answer or its error."""
        if len(request.items) > config.limits.max_batch_items:
            raise ServiceError(
                413,
                "too_many_items",
                f"The batch has {len(request.items)} items; the limit is "
                f"{config.limits.max_batch_items}.",
            )
        total_rows = sum(
            max((len(v) for v in i.readings.values()), default=0) for i in request.items
        )
        if total_rows > config.limits.max_rows * max(1, config.limits.max_batch_items // 10):
            raise ServiceError(
                413,
                "too_many_rows",
                f"The batch carries {total_rows} rows in all; the limit is "
                f"{config.limits.max_rows * max(1, config.limits.max_batch_items // 10)}.",
            )
        results, errors = [], 0
        for index, item in enumerate(request.items):
            families = None if item.families is None else [f.value for f in item.families]
            try:
                prediction = _predict(item.machine_id, item, families)
                results.append(
                    {
                        "index": index,
                        "machine_id": item.machine_id,
                        "status": 200,
                        "prediction": prediction,
                    }
                )
            except ServiceError as err:
                errors += 1
                results.append(
                    {
                        "index": index,
                        "machine_id": item.machine_id,
                        "status": err.status,
                        "error": err.body(),
                    }
                )
        return {"results": results, "errors": errors}

    @app.get(
        "/v1/machines/{machine_id}/performance",
        response_model=PerformanceResponse,
        responses=ERRORS,
        tags=["models"],
    )
    def performance(machine_id: str, _key: PredictKey) -> dict[str, Any]:
        """Each family's metrics over its registered versions (MLflow), beside baselines."""
        return state.performance.read(_served(state, machine_id))

    # -- training ------------------------------------------------------------------------------
    @app.post(
        "/v1/machines/{machine_id}/training",
        response_model=JobAccepted,
        status_code=202,
        responses={**ERRORS, 409: {"model": ErrorResponse, "description": "a job is running"}},
        tags=["training"],
    )
    def train(
        machine_id: str,
        _key: AdminKey,
        request: Annotated[TrainingRequest | None, Body()] = None,
    ) -> dict[str, Any]:
        """Start training this machine (a separate `kedro run`); 202 with the job id."""
        _served(state, machine_id)
        if state.jobs is None:
            raise ServiceError(503, "jobs_disabled", "Training jobs are not enabled here.")
        record = state.jobs.submit(machine_id, (request or TrainingRequest()).params)
        return {
            "job_id": record["job_id"],
            "machine_id": machine_id,
            "state": record["state"],
            "status_url": f"/v1/jobs/{record['job_id']}",
        }

    @app.get("/v1/jobs/{job_id}", response_model=JobStatus, responses=ERRORS, tags=["training"])
    def job(job_id: str, _key: AdminKey) -> dict[str, Any]:
        """State, stage progress, log tail, versions before/after and the promotion decisions."""
        record = None if state.jobs is None else state.jobs.status(job_id)
        if record is None:
            raise ServiceError(
                404, "unknown_job", f"Unknown job {job_id!r} (job ids are 32 hex digits)."
            )
        return record

    # -- metrics -------------------------------------------------------------------------------
    metrics_deps = [Depends(PREDICT_GUARD)] if config.metrics.require_key else []

    @app.get("/metrics", dependencies=metrics_deps, tags=["monitoring"], response_class=Response)
    def prometheus() -> Response:
        """Prometheus text format."""
        metrics.refresh_gauges(registry, state.jobs)
        monitoring_metrics.refresh(config.models_root, list(registry.machines))
        body, content_type = metrics.render()
        return Response(body, media_type=content_type)

    dashboard.mount(app)  # the fleet dashboard at /dashboard (service/dashboard.py)
    return app
