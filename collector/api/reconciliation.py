"""Reconciliation over HTTP: pull OpenAI's costs and usage on demand, compare them with ours, the log of pulls."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from collector.api.errors import ConflictError
from collector.api.params import Params
from collector.api.state import AppState
from collector.query.filters import QueryError
from collector.reconcile import compare, pull

DEFAULT_DAYS = 30
NO_KEY = (
    "no OpenAI admin key is configured: set OPENAI_ADMIN_KEY in the collector's environment, or start it with "
    "--openai-admin-key-file FILE (an organization admin key with the api.usage.read scope)"
)


def routes(state: AppState) -> list[Route]:
    """The reconciliation routes:

    - `POST /api/v1/reconcile?from=&to=` (admin): pull whole UTC days (default: the days a scheduled pull covers);
      200 with the run, 502 when OpenAI refused or failed (the run, with its error, is recorded either way), 409
      without a key (`state.reconciler` is None).
    - `GET /api/v1/reconciliation?from=&to=&by=day|model`: see `collector.reconcile.compare` (default: the last 30
      days).
    - `GET /api/v1/reconcile-runs`: whether a key is configured, the schedule, and the latest pulls.
    """
    handlers = _Handlers(state)
    return [
        Route("/api/v1/reconcile", handlers.pull, methods=["POST"]),
        Route("/api/v1/reconciliation", handlers.compare, methods=["GET"]),
        Route("/api/v1/reconcile-runs", handlers.runs, methods=["GET"]),
    ]


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
    def __init__(self, state: AppState) -> None:
        self.state = state

    async def pull(self, request: Request) -> Response:
        from_day, to_day = pull.day_range(*Params.of(request).times(), datetime.now(tz=UTC))
        reconciler = self.state.reconciler
        if reconciler is None:
            raise ConflictError(NO_KEY)
        run = await run_in_threadpool(reconciler.pull, from_day, to_day, "api")
        # A failed pull is still a run (recorded, with OpenAI's error): its body, with 502.
        return JSONResponse(run.as_json(), 200 if run.ok else 502)

    async def compare(self, request: Request) -> Response:
        params = Params.of(request)
        from_day, to_day = compared_days(*params.times(), datetime.now(tz=UTC))
        by = params.optional("by") or "day"
        return JSONResponse(await self.state.read(lambda con: compare.reconciliation(con, from_day, to_day, by)))

    async def runs(self, request: Request) -> Response:
        reconciler = self.state.reconciler
        shown = await self.state.read(pull.runs)
        return JSONResponse(
            {
                "configured": reconciler is not None,
                "interval_s": reconciler.interval_s if reconciler else None,
                "pull_days": pull.PULL_DAYS,
                "runs": shown,
            }
        )
