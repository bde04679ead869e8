"""Request guards: API key and scope, per-key rate limits, request body size.

Rate limits use the ``limits`` library (the engine behind slowapi) with a sliding-window counter
per key and scope, in process memory: with several workers each keeps its own window (the budget
is then per worker; a shared Redis storage would make it global).
"""

from __future__ import annotations

import math
import time
from typing import Any

from fastapi import Request, Security
from fastapi.security import APIKeyHeader
from limits import parse
from limits.storage import MemoryStorage
from limits.strategies import SlidingWindowCounterRateLimiter

from pdm_kedro.service.auth import HEADER, KeyStore, Principal
from pdm_kedro.service.errors import ServiceError, error_response

API_KEY = APIKeyHeader(
    name=HEADER, auto_error=False, description="API key (scopes: predict, admin)"
)


class SweepingMemoryStorage(MemoryStorage):
    """``limits``' in-memory storage with its expiry sweep at most once a second.

    The stock storage starts a new 10 ms ``threading.Timer`` thread on nearly every hit once the
    previous one has finished; starting a thread blocks the caller (here the event loop) until the
    thread runs, which under load cost about 1 ms per request. Counters still expire exactly (the
    storage checks a key's expiry on every read); only the sweep of stale keys is less frequent.
    """

    SWEEP_SECONDS = 1.0

    def __init__(self) -> None:
        self._next_sweep = 0.0
        super().__init__()

    def _MemoryStorage__schedule_expiry(self) -> None:  # noqa: N802 (the parent's private name)
        now = time.monotonic()
        if now >= self._next_sweep:
            self._next_sweep = now + self.SWEEP_SECONDS
            MemoryStorage._MemoryStorage__schedule_expiry(self)  # type: ignore[attr-defined]


class RateLimiter:
    """Per-key, per-scope budgets (``{"predict": "100/minute", ...}``)."""

    def __init__(self, budgets: dict[str, str]) -> None:
        self._items = {scope: parse(text) for scope, text in budgets.items()}
        self._texts = dict(budgets)
        self._limiter = SlidingWindowCounterRateLimiter(SweepingMemoryStorage())

    def check(
        self, principal: Principal, scope: str, cost: int = 1, request_cost: int | None = None
    ) -> None:
        """Count ``cost`` hits (an explained prediction costs more than a plain one: the guard
        counts one, the route the rest; ``request_cost`` is the whole request's, for the
        message); raise 429 with ``Retry-After`` when the key's budget is spent."""
        item = self._items[scope]
        if self._limiter.hit(item, principal.key_id, scope, cost=cost):
            return
        stats = self._limiter.get_window_stats(item, principal.key_id, scope)
        retry = max(1, math.ceil(stats.reset_time - time.time()))
        total = request_cost or cost
        counted = f" (this request counts as {total})" if total > 1 else ""
        raise ServiceError(
            429,
            "rate_limited",
            f"Rate limit of key {principal.key_id} for {scope} requests is {self._texts[scope]}"
            f"{counted}; retry in {retry} s.",
            headers={"Retry-After": str(retry)},
        )


def require(scope: str) -> Any:
    """A dependency that admits keys holding ``scope`` and counts them against their budget."""

    async def guard(request: Request, key: str | None = Security(API_KEY)) -> Principal:
        state = request.app.state.service
        keys: KeyStore = state.keys
        if not key:
            raise ServiceError(401, "missing_api_key", f"Send an API key in the {HEADER} header.")
        principal = keys.authenticate(key)
        if principal is None:
            raise ServiceError(401, "unknown_api_key", f"The {HEADER} key is not known.")
        if scope not in principal.scopes:
            raise ServiceError(
                403,
                "wrong_scope",
                f"Key {principal.key_id} has scopes {sorted(principal.scopes)}; this endpoint "
                f"needs {scope!r}.",
            )
        state.rate_limiter.check(principal, scope)
        return principal

    return guard


class BodyLimitMiddleware:
    """413 for a request body above ``max_bytes`` (by Content-Length, or counted when chunked)."""

    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    def _too_large(self, size: str) -> Any:
        return error_response(
            ServiceError(
                413,
                "body_too_large",
                f"Request body of {size} bytes is above the limit of {self.max_bytes} bytes: "
                "send fewer rows or split the batch.",
            )
        )

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope.get("method") in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        if length is not None:
            try:
                declared = int(length)
            except ValueError:
                declared = -1
            if declared > self.max_bytes:
                await self._too_large(str(declared))(scope, receive, send)
                return
            await self.app(scope, receive, send)
            return
        # no Content-Length (chunked): read at most max_bytes, then replay the body
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            more = message.get("more_body", False)
            if size > self.max_bytes:
                await self._too_large(f"more than {self.max_bytes}")(scope, receive, send)
                return
        body = b"".join(chunks)
        sent = False

        async def replay() -> dict:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)
