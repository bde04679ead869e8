"""Request bodies parsed with orjson: the stdlib parser was the largest cost of a predict request.

A predict body is mostly long lists of numbers (a 191-row history of 8 columns is ~29 KB); the
stdlib ``json.loads`` took ~0.7 ms of the event loop per request, orjson a fraction of that. The
routes, their signatures, validation (pydantic) and the OpenAPI schema stay FastAPI's: only
``Request.json`` changes. A body orjson refuses is parsed again with the stdlib, so what it accepts
beyond strict JSON (``NaN``, ``Infinity``, which the schema then refuses by name) and its error
messages for broken JSON are exactly as before.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from typing import Any

import orjson
from fastapi import Request, Response
from fastapi.routing import APIRoute


class OrjsonRequest(Request):
    """``json()`` by orjson, the stdlib for what orjson refuses."""

    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            body = await self.body()
            try:
                self._json = orjson.loads(body)
            except orjson.JSONDecodeError:
                self._json = json.loads(body)  # NaN/Infinity, or the stdlib's error message
        return self._json


class OrjsonRoute(APIRoute):
    """An ``APIRoute`` whose handler sees an :class:`OrjsonRequest`."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route_handler(request: Request) -> Response:
            return await handler(OrjsonRequest(request.scope, request.receive))

        return route_handler
