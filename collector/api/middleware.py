"""The ASGI middlewares around every route: request timing for /metrics, and the bearer-token check."""

from __future__ import annotations

import time
from typing import Any

from starlette.requests import Request

from collector.api import errors
from collector.api.auth import AuthError, Tokens, scope_for
from collector.metrics import Metrics


class RequestTiming:
    """ASGI middleware: request count and latency per known path, for /metrics."""

    def __init__(self, app: Any, metrics: Metrics, known_paths: frozenset[str]) -> None:
        self.app = app
        self.metrics = metrics
        self.known_paths = known_paths

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_and_note(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            path = scope["path"] if scope["path"] in self.known_paths else "other"
            self.metrics.observe("llmledger_request_seconds", time.perf_counter() - started, path=path)
            self.metrics.add("llmledger_requests_total", path=path, status=str(status))


class Authorize:
    """ASGI middleware: every request but `/healthz` carries the token its endpoint needs (see collector.api.auth)."""

    def __init__(self, app: Any, tokens: Tokens, metrics: Metrics) -> None:
        self.app = app
        self.tokens = tokens
        self.metrics = metrics

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            authorization = Request(scope).headers.get("authorization")
            try:
                self.tokens.authorize(scope_for(scope["method"], scope["path"]), authorization)
            except AuthError as error:
                self.metrics.add("llmledger_requests_unauthorized_total", status=str(error.status))
                await errors.unauthorized(error)(scope, receive, send)
                return
        await self.app(scope, receive, send)
