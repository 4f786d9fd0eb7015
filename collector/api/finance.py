"""Finance reads: the FOCUS 1.2 export (CSV or Parquet) and chargeback by team for a month."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from collector.api.params import Params
from collector.api.state import AppState
from collector.finance import chargeback, files, focus
from collector.query.exports import neutralise
from collector.query.filters import QueryError


def routes(state: AppState) -> list[Route]:
    handlers = _Handlers(state)
    return [
        Route("/api/v1/export/focus", handlers.focus_export, methods=["GET"]),
        Route("/api/v1/chargeback", handlers.chargeback, methods=["GET"]),
    ]


def _format(params: Params, allowed: tuple[str, ...]) -> str:
    value = params.single("format", allowed[0])
    if value not in allowed:
        raise QueryError("format", f"{value!r} is not one of {', '.join(allowed)}")
    return value


def _month(params: Params) -> focus.Window:
    """`month=YYYY-MM` (default: the current UTC month) as its window."""
    text = params.optional("month")
    today = datetime.now(UTC).date()
    if text is None:
        return focus.Window.of(None, None, today)
    try:
        first = datetime.strptime(text, "%Y-%m").replace(tzinfo=UTC)
    except ValueError:
        raise QueryError("month", f"{text!r} is not a month as YYYY-MM") from None
    return focus.Window.of(first, None, first.date())


class _Handlers:
    def __init__(self, state: AppState) -> None:
        self.state = state

    async def focus_export(self, request: Request) -> Response:
        params = Params.of(request)
        file_format = _format(params, tuple(files.FORMATS))
        window = focus.Window.of(*params.times(), datetime.now(UTC).date())
        rows = await self.state.read(lambda con: focus.rows(con, window, self.state.price_book))
        name = f"llmledger-focus-{window.start}-{window.end}.{file_format}"
        headers = {"Content-Disposition": f'attachment; filename="{name}"'}
        return Response(files.encode(rows, file_format), media_type=files.FORMATS[file_format], headers=headers)

    async def chargeback(self, request: Request) -> Response:
        params = Params.of(request)
        allocate = params.single("allocate", "apart")
        chargeback.check(allocate)
        file_format = _format(params, ("json", "csv"))
        window = _month(params)
        rows = await self.state.read(lambda con: chargeback.rows(con, window))
        report: dict[str, Any] = {"month": window.start.strftime("%Y-%m"), **chargeback.by_team(rows, allocate)}
        if file_format == "json":
            return JSONResponse(report)
        names = ("team", "tracked_usd", "allocated_usd", "cost_usd", "share_pct")
        lines = [",".join(names)] + [",".join(_csv_cell(team[name]) for name in names) for team in report["teams"]]
        headers = {"Content-Disposition": f'attachment; filename="llmledger-chargeback-{report["month"]}.csv"'}
        return Response("\r\n".join(lines) + "\r\n", media_type="text/csv; charset=utf-8", headers=headers)


def _csv_cell(value: Any) -> str:
    text = neutralise(value)
    return f'"{text.replace(chr(34), chr(34) * 2)}"' if any(char in text for char in ',"\r\n') else text
