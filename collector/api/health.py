"""Liveness and the process's own numbers: GET /healthz (open) and GET /metrics (Prometheus text)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from collector.api.state import AppState


def routes(state: AppState) -> list[Route]:
    async def healthz(request: Request) -> Response:
        if not state.ready:
            return JSONResponse({"status": "starting"}, 503)
        return JSONResponse({"status": "ok", "database": state.store.path, "prices": state.price_status()})

    async def prometheus(request: Request) -> Response:
        return PlainTextResponse(state.metrics.render(), media_type="text/plain; version=0.0.4")

    return [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/metrics", prometheus, methods=["GET"]),
    ]
