"""The collector's HTTP app, assembled: every router's routes, the two middlewares and the error handlers."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.middleware import Middleware

from collector.api import (
    admin,
    alerts,
    digests,
    finance,
    guard,
    health,
    prices,
    query,
    readiness,
    reconciliation,
    silences,
    sql,
)
from collector.api.errors import EXCEPTION_HANDLERS
from collector.api.middleware import Authorize, RequestTiming
from collector.api.state import AppState
from collector.receive import http as receive_http


def build_app(state: AppState) -> Starlette:
    routes = [
        *receive_http.routes(state),
        *health.routes(state),
        *query.routes(state),
        *alerts.routes(state),
        *silences.routes(state),
        *digests.routes(state),
        *guard.routes(state),
        *admin.routes(state),
        *prices.routes(state),
        *reconciliation.routes(state),
        *readiness.routes(state),
        *finance.routes(state),
        *sql.routes(state),
    ]
    known_paths = frozenset(route.path for route in routes)
    timing = Middleware(RequestTiming, metrics=state.metrics, known_paths=known_paths)
    authorize = Middleware(Authorize, tokens=state.tokens, metrics=state.metrics)
    return Starlette(routes=routes, middleware=[timing, authorize], exception_handlers=EXCEPTION_HANDLERS)
