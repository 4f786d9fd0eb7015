"""The reconciliation endpoints: pull OpenAI's costs and usage on demand (admin), compare them with ours, and the
log of pulls (read).

- `POST /api/v1/reconcile?from=&to=`: pull whole UTC days (default: the days a scheduled pull covers); 200 with
  the run, 502 when OpenAI refused or failed (the run, with its error, is recorded either way), 409 without a key.
- `GET /api/v1/reconciliation?from=&to=&by=day|model`: see `collector.reconcile.compare` (default: the last 30 days).
- `GET /api/v1/reconcile-runs`: whether a key is configured, the schedule, and the latest pulls.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from collector.query.filters import QueryError, parse_time
from collector.reconcile import compare, pull

DEFAULT_DAYS = 30
NO_KEY = (
    "no OpenAI admin key is configured: set OPENAI_ADMIN_KEY in the collector's environment, or start it with "
    "--openai-admin-key-file FILE (an organization admin key with the api.usage.read scope)"
)


def routes(app: Any) -> list[Route]:
    """The reconciliation routes of a `CollectorApp` (its store reader, and the `reconciler` the server sets)."""
    handlers = _Handlers(app)
    return [
        Route("/api/v1/reconcile", handlers.pull, methods=["POST"]),
        Route("/api/v1/reconciliation", handlers.compare, methods=["GET"]),
        Route("/api/v1/reconcile-runs", handlers.runs, methods=["GET"]),
    ]


def _times(request: Request) -> tuple[datetime | None, datetime | None]:
    params = request.query_params
    start = parse_time("from", params.getlist("from")[-1]) if params.get("from") else None
    end = parse_time("to", params.getlist("to")[-1]) if params.get("to") else None
    if start and end and start >= end:
        raise QueryError("from", "must be before to")
    return start, end


def compared_days(start: datetime | None, end: datetime | None, now: datetime) -> tuple[date, date]:
    """Whole UTC days [from, to) covering [start, end); by default the last DEFAULT_DAYS days including today."""
    tomorrow = now.astimezone(UTC).date() + timedelta(days=1)
    from_day = start.astimezone(UTC).date() if start else tomorrow - timedelta(days=DEFAULT_DAYS)
    to_day = tomorrow
    if end is not None:
        end = end.astimezone(UTC)
        to_day = end.date() + timedelta(days=end.time() != time(0))
    if from_day >= to_day:
        raise QueryError("from", "must be before to")
    if (to_day - from_day).days > pull.MAX_DAYS:
        raise QueryError("to", f"at most {pull.MAX_DAYS} days after from")
    return from_day, to_day


class _Handlers:
    def __init__(self, app: Any) -> None:
        self.app = app

    @property
    def reconciler(self) -> pull.Reconciler | None:
        return getattr(self.app, "reconciler", None)

    async def pull(self, request: Request) -> Response:
        try:
            from_day, to_day = pull.day_range(*_times(request), datetime.now(tz=UTC))
        except QueryError as error:
            return JSONResponse({"error": error.message, "parameter": error.parameter}, 400)
        reconciler = self.reconciler
        if reconciler is None:
            return JSONResponse({"error": NO_KEY}, 409)
        run = await run_in_threadpool(reconciler.pull, from_day, to_day, "api")
        return JSONResponse(run.as_json(), 200 if run.ok else 502)

    async def compare(self, request: Request) -> Response:
        try:
            from_day, to_day = compared_days(*_times(request), datetime.now(tz=UTC))
            by = request.query_params.getlist("by")[-1] if request.query_params.get("by") else "day"
            result = await self.app.read(lambda con: compare.reconciliation(con, from_day, to_day, by))
        except QueryError as error:
            return JSONResponse({"error": error.message, "parameter": error.parameter}, 400)
        return JSONResponse(result)

    async def runs(self, request: Request) -> Response:
        reconciler = self.reconciler
        shown = await self.app.read(pull.runs)
        return JSONResponse(
            {
                "configured": reconciler is not None,
                "interval_s": reconciler.interval_s if reconciler else None,
                "pull_days": pull.PULL_DAYS,
                "runs": shown,
            }
        )
