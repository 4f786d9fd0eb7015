"""The guard's budgets over HTTP: what apps running the guard poll, and the same answer for the dashboard."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from collector.alerts import budgets
from collector.api.state import AppState


def routes(state: AppState) -> list[Route]:
    """- `GET /v1/guard/budgets` (the ingest token, which apps hold): `{"as_of", "budgets": [{"id", "name", "window",
      "window_start", "filters", "op", "limit_usd", "spent_usd", "action", "downgrade_to"}]}` for every enabled
      alert rule with `enforce` set; money as decimal strings.
    - `GET /api/v1/guard/budgets` (the read token): the same, for the dashboard.
    """

    async def guard_budgets(request: Request) -> Response:
        def read(con: Any) -> dict[str, Any]:
            now = datetime.now(tz=UTC)  # before the read: every call stored by `as_of` is counted
            return budgets.answer(con, state.alerts.rules(con), now)

        return JSONResponse(await state.read(read))

    return [
        Route("/v1/guard/budgets", guard_budgets, methods=["GET"]),
        Route("/api/v1/guard/budgets", guard_budgets, methods=["GET"]),
    ]
