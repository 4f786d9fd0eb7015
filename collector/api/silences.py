"""Silences over HTTP: list, create and end them (changes need the admin token, like rule edits)."""

from __future__ import annotations

from datetime import UTC, datetime

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from collector.alerts.silences import SilenceStore, parse_silence
from collector.api.errors import NotFoundError
from collector.api.params import json_body
from collector.api.state import AppState


def routes(state: AppState) -> list[Route]:
    handlers = _Handlers(state)
    return [
        Route("/api/v1/silences", handlers.list_silences, methods=["GET"]),
        Route("/api/v1/silences", handlers.create_silence, methods=["POST"]),
        Route("/api/v1/silences/{silence_id:int}", handlers.delete_silence, methods=["DELETE"]),
    ]


class _Handlers:
    def __init__(self, state: AppState) -> None:
        self.state = state
        self.silences = SilenceStore(state.store)

    async def list_silences(self, request: Request) -> Response:
        now = datetime.now(tz=UTC)
        return JSONResponse({"silences": await self.state.read(lambda con: self.silences.shown(con, now))})

    async def create_silence(self, request: Request) -> Response:
        now = datetime.now(tz=UTC)
        silence = parse_silence(await json_body(request), now)
        if silence.rule_id is not None:
            rules = dict(await self.state.read(self.state.alerts.rules))
            if silence.rule_id not in rules:
                raise NotFoundError(f"no alert rule {silence.rule_id}")
        silence_id = await run_in_threadpool(self.silences.create, silence, now)
        return JSONResponse({"id": silence_id}, 201)

    async def delete_silence(self, request: Request) -> Response:
        silence_id = request.path_params["silence_id"]
        if not await run_in_threadpool(self.silences.delete, silence_id):
            raise NotFoundError(f"no silence {silence_id}")
        return Response(status_code=204)
