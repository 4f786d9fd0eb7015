"""The readiness endpoints: the production checklist scored from a service's calls
(`collector.readiness.checklist`), its
daily history, and what the team states that traffic can't show.

- `GET /api/v1/readiness?service=&environment=&from=&to=`: the scorecard (default: the last 7 days).
- `GET /api/v1/readiness/history?service=&environment=&days=30`: `{"service", "environment", "points": [{"day",
  "score"}]}`, one point per UTC day that has calls of the service.
- `POST /api/v1/readiness/attest` (admin): `{"service", "item": "test.load"|"test.mocked", "by", "link", "note"?}`
  → 201 with the stored attestation; 422 naming the field that is wrong.
- `PUT /api/v1/readiness/batch-features` (admin): `{"service", "features": [...]}` replaces the service's
  batch-eligible features; `GET ...?service=` lists them.

"Production" is the environments the collector was started with (`production_environments` on the app, set from
`--production-environments`), else `production` and `prod`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from collector.query.filters import QueryError, parse_time
from collector.readiness import checklist

DEFAULT_DAYS = 7
DEFAULT_HISTORY_DAYS = 30
MAX_HISTORY_DAYS = 366
MAX_TEXT = 500
MAX_FEATURES = 1000


class _InvalidError(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def routes(app: Any) -> list[Route]:
    """The readiness routes of a `CollectorApp` (its store, tokens and reader)."""
    handlers = _Handlers(app)
    return [
        Route("/api/v1/readiness", handlers.scorecard, methods=["GET"]),
        Route("/api/v1/readiness/history", handlers.history, methods=["GET"]),
        Route("/api/v1/readiness/attest", handlers.attest, methods=["POST"]),
        Route("/api/v1/readiness/batch-features", handlers.batch_features, methods=["GET"]),
        Route("/api/v1/readiness/batch-features", handlers.mark_batch_features, methods=["PUT"]),
    ]


# --- storage ----------------------------------------------------------------------------------------------------


def stored_rules(app: Any, con: Any) -> list[checklist.StoredRule]:
    rules = app.alerts.rules(con)
    created = dict(con.execute("SELECT id, created_at FROM alert_rules").fetchall())
    now = datetime.now(tz=UTC)  # a rule deleted between the two reads
    return [checklist.StoredRule(rule_id, rule, created.get(rule_id, now)) for rule_id, rule in rules]


def attestations(con: Any, service: str) -> list[checklist.Attestation]:
    rows = con.execute(
        "SELECT item, attested_by, link, note, attested_at FROM readiness_attestations WHERE service = ? ORDER BY id",
        [service],
    ).fetchall()
    return [checklist.Attestation(*row) for row in rows]


def batch_features(con: Any, service: str) -> list[str]:
    rows = con.execute(
        "SELECT feature FROM readiness_batch_features WHERE service = ? ORDER BY feature", [service]
    ).fetchall()
    return [feature for (feature,) in rows]


def context(app: Any, con: Any, service: str) -> checklist.Context:
    return checklist.Context(
        rules=stored_rules(app, con),
        attestations=attestations(con, service),
        batch_features=batch_features(con, service),
        tokens_required=app.tokens.enabled,
        listen_host=getattr(app, "listen_host", None),
    )


def production_environments(app: Any) -> tuple[str, ...]:
    configured = getattr(app, "production_environments", None)
    return tuple(configured) if configured else checklist.PRODUCTION_ENVIRONMENTS


# --- validation -------------------------------------------------------------------------------------------------


def _text(payload: Mapping[str, Any], name: str, *, required: bool = True) -> str | None:
    value = payload.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip():
        raise _InvalidError(name, "is required and must be a non-empty string")
    if len(value) > MAX_TEXT:
        raise _InvalidError(name, f"must be at most {MAX_TEXT} characters")
    return value.strip()


def parse_attestation(payload: Any) -> dict[str, Any]:
    """The attestation in a request body, or `_InvalidError` naming the first field that is wrong."""
    if not isinstance(payload, Mapping):
        raise _InvalidError("body", "must be a JSON object")
    unknown = set(payload) - {"service", "item", "by", "link", "note"}
    if unknown:
        raise _InvalidError(sorted(unknown)[0], "is not an attestation field")
    service = _text(payload, "service")
    item = payload.get("item")
    if item not in checklist.ATTESTED_ITEMS:
        raise _InvalidError("item", f"must be one of {', '.join(checklist.ATTESTED_ITEMS)} (the others are observed)")
    by = _text(payload, "by")
    link = _text(payload, "link")
    parts = urlsplit(link or "")
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise _InvalidError("link", "must be an http(s) URL to the evidence (a CI run, a report, the tests)")
    return {"service": service, "item": item, "by": by, "link": link, "note": _text(payload, "note", required=False)}


def parse_batch_features(payload: Any) -> tuple[str, list[str]]:
    if not isinstance(payload, Mapping):
        raise _InvalidError("body", "must be a JSON object")
    unknown = set(payload) - {"service", "features"}
    if unknown:
        raise _InvalidError(sorted(unknown)[0], "is not a field here (service, features)")
    service = _text(payload, "service")
    features = payload.get("features")
    if not isinstance(features, list) or not all(isinstance(f, str) and f.strip() for f in features):
        raise _InvalidError("features", "must be a list of feature names (an empty list unmarks all)")
    if len(features) > MAX_FEATURES or any(len(f) > MAX_TEXT for f in features):
        raise _InvalidError("features", f"at most {MAX_FEATURES} names of at most {MAX_TEXT} characters")
    return service or "", sorted({feature.strip() for feature in features})


def _period(request: Request, now: datetime) -> tuple[datetime, datetime]:
    params = request.query_params
    end = parse_time("to", params.getlist("to")[-1]) if params.get("to") else now
    start = parse_time("from", params.getlist("from")[-1]) if params.get("from") else end - timedelta(days=DEFAULT_DAYS)
    if start >= end:
        raise QueryError("from", "must be before to")
    return start, end


def _required(request: Request, name: str) -> str:
    values = request.query_params.getlist(name)
    if not values or not values[-1]:
        raise QueryError(name, "is required")
    return values[-1]


def _optional(request: Request, name: str) -> str | None:
    values = request.query_params.getlist(name)
    return values[-1] if values and values[-1] else None


# --- handlers ---------------------------------------------------------------------------------------------------


class _Handlers:
    def __init__(self, app: Any) -> None:
        self.app = app

    def _scope(self, request: Request, start: datetime, end: datetime) -> checklist.Scope:
        return checklist.Scope(
            _required(request, "service"), start, end, _optional(request, "environment"),
            production_environments(self.app),
        )  # fmt: skip

    async def scorecard(self, request: Request) -> Response:
        try:
            scope = self._scope(request, *_period(request, datetime.now(tz=UTC)))
        except QueryError as error:
            return JSONResponse({"error": error.message, "parameter": error.parameter}, 400)

        def run(con: Any) -> dict[str, Any]:
            return checklist.scorecard(con, scope, context(self.app, con, scope.service))

        return JSONResponse(await self.app.read(run))

    async def history(self, request: Request) -> Response:
        try:
            text = _optional(request, "days") or str(DEFAULT_HISTORY_DAYS)
            if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= MAX_HISTORY_DAYS:
                raise QueryError("days", f"must be a whole number from 1 to {MAX_HISTORY_DAYS}")
            today = datetime.now(tz=UTC).replace(hour=0, minute=0, second=0, microsecond=0)
            end = today + timedelta(days=1)
            scope = self._scope(request, end - timedelta(days=int(text)), end)
        except QueryError as error:
            return JSONResponse({"error": error.message, "parameter": error.parameter}, 400)

        def run(con: Any) -> list[dict[str, Any]]:
            return checklist.history(con, scope, context(self.app, con, scope.service))

        points = await self.app.read(run)
        return JSONResponse({"service": scope.service, "environment": scope.environment, "points": points})

    async def attest(self, request: Request) -> Response:
        try:
            try:
                payload = await request.json()
            except ValueError:
                return JSONResponse({"error": "body is not valid JSON", "field": "body"}, 400)
            attestation = parse_attestation(payload)
        except _InvalidError as error:
            return JSONResponse({"error": error.message, "field": error.field}, 422)
        now = datetime.now(tz=UTC)

        def store() -> int:
            with self.app.store.transaction() as con:
                attestation_id = self.app.store.next_id(con, "readiness_attestation_ids")
                con.execute(
                    "INSERT INTO readiness_attestations (id, service, item, attested_by, link, note, attested_at) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [attestation_id, *attestation.values(), now],
                )
            return attestation_id

        attestation_id = await run_in_threadpool(store)
        return JSONResponse({"id": attestation_id, **attestation, "at": now.isoformat()}, 201)

    async def batch_features(self, request: Request) -> Response:
        try:
            service = _required(request, "service")
        except QueryError as error:
            return JSONResponse({"error": error.message, "parameter": error.parameter}, 400)
        features = await self.app.read(lambda con: batch_features(con, service))
        return JSONResponse({"service": service, "features": features})

    async def mark_batch_features(self, request: Request) -> Response:
        try:
            try:
                payload = await request.json()
            except ValueError:
                return JSONResponse({"error": "body is not valid JSON", "field": "body"}, 400)
            service, features = parse_batch_features(payload)
        except _InvalidError as error:
            return JSONResponse({"error": error.message, "field": error.field}, 422)
        now = datetime.now(tz=UTC)

        def store() -> None:
            with self.app.store.transaction() as con:
                con.execute("DELETE FROM readiness_batch_features WHERE service = ?", [service])
                if features:
                    con.executemany(
                        "INSERT INTO readiness_batch_features VALUES (?, ?, ?)",
                        [[service, feature, now] for feature in features],
                    )

        await run_in_threadpool(store)
        return JSONResponse({"service": service, "features": features})
