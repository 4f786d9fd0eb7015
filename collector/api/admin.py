"""Operating the database over HTTP: a consistent backup, re-pricing a range, and the log of re-pricing runs."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from collector.api.errors import BadBodyError
from collector.api.params import Params, json_body
from collector.api.state import AppState
from collector.money import reprice
from collector.query.filters import QueryError, jsonable
from collector.store import backup


def routes(state: AppState) -> list[Route]:
    handlers = _Handlers(state)
    return [
        Route("/api/v1/backup", handlers.backup, methods=["POST"]),
        Route("/api/v1/reprice", handlers.reprice, methods=["POST"]),
        Route("/api/v1/reprice-runs", handlers.reprice_runs, methods=["GET"]),
    ]


class _Handlers:
    def __init__(self, state: AppState) -> None:
        self.state = state

    async def backup(self, request: Request) -> Response:
        """Every table as one snapshot, written by the collector (which owns the database) into a new folder."""
        payload = await json_body(request)
        target = payload.get("to") if isinstance(payload, dict) else None
        if not isinstance(target, str) or not target:
            raise BadBodyError("to", "'to' must name a folder on the collector's machine")
        return JSONResponse(await run_in_threadpool(backup.backup, self.state.store, Path(target)))

    async def reprice(self, request: Request) -> Response:
        params = Params.of(request)
        start, end = params.times()
        for name, bound in (("from", start), ("to", end)):
            if bound is None:
                raise QueryError(name, "is required: re-pricing works on a stated range")
        dry_run = params.boolean("dry_run")
        book = self.state.price_book
        result = await run_in_threadpool(
            lambda: reprice.reprice(self.state.store, book, start, end, dry_run=dry_run, now=datetime.now(UTC))
        )
        return JSONResponse(result.as_json())

    async def reprice_runs(self, request: Request) -> Response:
        def run(con: Any) -> Any:
            rows = con.execute(
                "SELECT id, ran_at, from_time, to_time, dry_run, price_version, rows_seen, rows_changed, "
                "costs_changed, old_total_usd, new_total_usd FROM reprice_runs ORDER BY id DESC LIMIT 100"
            )
            names = [column[0] for column in rows.description]
            return {"runs": [{n: jsonable(v) for n, v in zip(names, row, strict=True)} for row in rows.fetchall()]}

        return JSONResponse(await self.state.read(run))
