"""JSON errors: every refusal is ``{"error": {status, code, message, ...}}`` with a 4xx status.

FastAPI's own validation errors (422) and HTTP errors (404 of an unknown path, 405, ...) are
rewritten into the same shape, so a client parses one format.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

logger = logging.getLogger(__name__)


class ServiceError(Exception):
    """A request the service refuses, with the status and a message naming the problem."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        details: list[dict[str, Any]] | None = None,
        known_machines: list[str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details
        self.known_machines = known_machines
        self.headers = headers

    def body(self) -> dict[str, Any]:
        """The ``error`` object."""
        out: dict[str, Any] = {"status": self.status, "code": self.code, "message": self.message}
        if self.details is not None:
            out["details"] = self.details
        if self.known_machines is not None:
            out["known_machines"] = self.known_machines
        return out


def error_response(error: ServiceError) -> JSONResponse:
    """The JSON response of ``error``."""
    return JSONResponse({"error": error.body()}, status_code=error.status, headers=error.headers)


def unknown_machine(machine_id: str, known: list[str]) -> ServiceError:
    """404 naming the served machines."""
    return ServiceError(
        404,
        "unknown_machine",
        f"Unknown machine {machine_id!r}: the service serves {len(known)} machines "
        f"({', '.join(known) or 'none'}).",
        known_machines=known,
    )


def _jsonable(value: Any) -> Any:
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return repr(value)


def _validation_details(exc: RequestValidationError) -> list[dict[str, Any]]:
    details = []
    for err in exc.errors()[:20]:
        details.append(
            {
                "field": ".".join(str(p) for p in err.get("loc", ()) if p != "body"),
                "problem": err.get("msg", ""),
                "type": err.get("type", ""),
            }
        )
    return details


def install_handlers(app: FastAPI) -> None:
    """Register the handlers that turn every refusal into the JSON error shape."""

    @app.exception_handler(ServiceError)
    async def _service_error(_request: Request, exc: ServiceError) -> JSONResponse:
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, exc: RequestValidationError) -> JSONResponse:
        details = _validation_details(exc)
        where = ", ".join(f"{d['field'] or 'body'}: {d['problem']}" for d in details[:3])
        json_error = any(d["type"] == "json_invalid" for d in details)
        return error_response(
            ServiceError(
                422,
                "invalid_json" if json_error else "invalid_request",
                (
                    "The body is not valid JSON (NaN and Infinity are not JSON: send null for a "
                    f"missing reading): {where}"
                    if json_error
                    else f"The request does not match the schema: {where}"
                ),
                details=details,
            )
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        codes = {404: "not_found", 405: "method_not_allowed", 413: "too_large"}
        return error_response(
            ServiceError(
                exc.status_code,
                codes.get(exc.status_code, "http_error"),
                str(exc.detail),
                headers=dict(exc.headers or {}),
            )
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:  # a bug: say so
        logger.exception("unexpected error on %s %s", request.method, request.url.path)
        return JSONResponse(
            {
                "error": {
                    "status": 500,
                    "code": "internal_error",
                    "message": f"Internal error ({type(exc).__name__}); it is logged.",
                }
            },
            status_code=500,
        )
