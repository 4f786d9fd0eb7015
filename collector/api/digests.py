"""Digests over HTTP: CRUD, a draft's preview (its text and chart, not sent), "send now" and the deliveries."""

from __future__ import annotations

from datetime import UTC, datetime

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from collector.api.errors import InvalidFieldError, NotFoundError
from collector.api.params import json_body
from collector.api.state import AppState
from collector.digests.spec import parse_digest


def routes(state: AppState) -> list[Route]:
    handlers = _Handlers(state)
    return [
        Route("/api/v1/digests", handlers.list_digests, methods=["GET"]),
        Route("/api/v1/digests", handlers.create_digest, methods=["POST"]),
        Route("/api/v1/digests/preview", handlers.preview_digest, methods=["POST"]),
        Route("/api/v1/digests/{digest_id:int}", handlers.get_digest, methods=["GET"]),
        Route("/api/v1/digests/{digest_id:int}", handlers.update_digest, methods=["PUT"]),
        Route("/api/v1/digests/{digest_id:int}", handlers.delete_digest, methods=["DELETE"]),
        Route("/api/v1/digests/{digest_id:int}/send", handlers.send_now, methods=["POST"]),
        Route("/api/v1/digests/{digest_id:int}/deliveries", handlers.deliveries, methods=["GET"]),
    ]


def _no_digest(digest_id: int) -> NotFoundError:
    return NotFoundError(f"no digest {digest_id}")


class _Handlers:
    """Changes go through the store's one writing connection (`DigestStore`), reads through `state.read`."""

    def __init__(self, state: AppState) -> None:
        self.state = state
        self.digests = state.digests
        self.records = state.digests.records

    async def list_digests(self, request: Request) -> Response:
        now = datetime.now(tz=UTC)
        return JSONResponse({"digests": await self.state.read(lambda con: self.records.shown(con, now))})

    async def get_digest(self, request: Request) -> Response:
        digest_id, now = request.path_params["digest_id"], datetime.now(tz=UTC)
        shown = await self.state.read(lambda con: self.records.shown(con, now, digest_id))
        if not shown:
            raise _no_digest(digest_id)
        return JSONResponse(shown[0])

    async def create_digest(self, request: Request) -> Response:
        digest = parse_digest(await json_body(request))
        digest_id = await run_in_threadpool(self.records.create, digest, datetime.now(tz=UTC))
        return JSONResponse({"id": digest_id}, 201)

    async def update_digest(self, request: Request) -> Response:
        digest = parse_digest(await json_body(request))
        digest_id = request.path_params["digest_id"]
        if not await run_in_threadpool(self.records.update, digest_id, digest, datetime.now(tz=UTC)):
            raise _no_digest(digest_id)
        return JSONResponse({"id": digest_id})

    async def delete_digest(self, request: Request) -> Response:
        digest_id = request.path_params["digest_id"]
        if not await run_in_threadpool(self.records.delete, digest_id):
            raise _no_digest(digest_id)
        return Response(status_code=204)

    async def preview_digest(self, request: Request) -> Response:
        """A draft digest's report on its last complete period: figures, text and chart (base64 PNG); not sent."""
        digest = parse_digest(await json_body(request))
        now = datetime.now(tz=UTC)
        return JSONResponse(await self.state.read(lambda con: self.digests.preview(con, digest, now)))

    async def send_now(self, request: Request) -> Response:
        """Send the last complete period's report now to every channel (in the background; recorded)."""
        digest_id = request.path_params["digest_id"]
        found = await self.state.read(lambda con: self.records.digests(con, digest_id))
        if not found:
            raise _no_digest(digest_id)
        digest = found[0].digest
        if not digest.channels:
            raise InvalidFieldError("channels", "this digest has no channels to send to")
        send = await run_in_threadpool(self.digests.send_now, digest_id, digest, datetime.now(tz=UTC))
        period = {"from": send.period.start.isoformat(), "to": send.period.end.isoformat()}
        return JSONResponse({"send_id": send.send_id, "period": period, "channels": len(digest.channels)}, 202)

    async def deliveries(self, request: Request) -> Response:
        digest_id = request.path_params["digest_id"]
        if not await self.state.read(lambda con: self.records.digests(con, digest_id)):
            raise _no_digest(digest_id)
        return JSONResponse({"deliveries": await self.state.read(lambda con: self.records.deliveries(con, digest_id))})
