"""The query API's reads of calls: summary, timeseries, calls, breakdown, a label's values, latency histogram and the
CSV export."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from collector.api.params import Params
from collector.api.state import AppState
from collector.query import exports, reads, reports, values
from collector.query.filters import DEFAULT_LIMIT, MAX_LIMIT, Filters, QueryError


def routes(state: AppState) -> list[Route]:
    handlers = _Handlers(state)
    return [
        Route("/api/v1/summary", handlers.summary, methods=["GET"]),
        Route("/api/v1/timeseries", handlers.timeseries, methods=["GET"]),
        Route("/api/v1/calls", handlers.calls, methods=["GET"]),
        Route("/api/v1/breakdown", handlers.breakdown, methods=["GET"]),
        Route("/api/v1/values", handlers.values, methods=["GET"]),
        Route("/api/v1/latency_histogram", handlers.latency_histogram, methods=["GET"]),
        Route("/api/v1/export.csv", handlers.export_csv, methods=["GET"]),
    ]


class _Handlers:
    def __init__(self, state: AppState) -> None:
        self.state = state

    async def _answer(self, request: Request, run: Callable[[Any, Params], Any]) -> Response:
        params = Params.of(request)
        return JSONResponse(await self.state.read(lambda con: run(con, params)))

    async def summary(self, request: Request) -> Response:
        def run(con: Any, params: Params) -> Any:
            listed = params.optional("fields")
            fields = [name.strip() for name in listed.split(",") if name.strip()] if listed else None
            return reads.summary(con, Filters.from_params(params), fields=fields)

        return await self._answer(request, run)

    async def timeseries(self, request: Request) -> Response:
        def run(con: Any, params: Params) -> Any:
            metric = params.single("metric", None)
            if metric is None:  # an empty metric is left to reads.timeseries to name as unknown
                raise QueryError("metric", "is required")
            return reads.timeseries(
                con,
                Filters.from_params(params),
                metric,
                params.single("bucket", "auto"),
                params.optional("group_by"),
            )

        return await self._answer(request, run)

    async def calls(self, request: Request) -> Response:
        def run(con: Any, params: Params) -> Any:
            limit = params.whole_number("limit", DEFAULT_LIMIT)
            filters = Filters.from_params(params)
            cursor = params.single("cursor", None)
            return reads.calls(con, filters, limit, cursor, params.single("order", "newest"))

        return await self._answer(request, run)

    async def breakdown(self, request: Request) -> Response:
        def run(con: Any, params: Params) -> Any:
            group_by = params.required("group_by")
            limit = params.whole_number("limit", 20)
            filters = Filters.from_params(params)
            # Savings at the rates the book prices with, negotiated overrides included.
            return reports.breakdown(con, filters, group_by, limit, self.state.price_book.rates)

        return await self._answer(request, run)

    async def values(self, request: Request) -> Response:
        def run(con: Any, params: Params) -> Any:
            group_by = params.required("group_by")
            limit = params.whole_number("limit", MAX_LIMIT)
            return values.values(con, Filters.from_params(params), group_by, limit)

        return await self._answer(request, run)

    async def latency_histogram(self, request: Request) -> Response:
        def run(con: Any, params: Params) -> Any:
            metric = params.single("metric", "duration_ms")
            bins = params.whole_number("bins", 30)
            return reports.latency_histogram(con, Filters.from_params(params), metric, bins)

        return await self._answer(request, run)

    async def export_csv(self, request: Request) -> Response:
        params = Params.of(request)
        kind = params.single("kind", "finance")
        period = params.single("period", "day")
        filters = Filters.from_params(params)
        exports.check(kind, period)

        def chunks() -> Iterator[str]:
            # Its own cursor: the chunks are produced on whichever worker thread Starlette iterates them in.
            cursor = self.state.store.reader()
            try:
                yield from exports.export_csv(cursor, filters, kind, period)
            finally:
                cursor.close()

        headers = {"Content-Disposition": f'attachment; filename="llmledger-{kind}.csv"'}
        return StreamingResponse(chunks(), media_type="text/csv; charset=utf-8", headers=headers)
