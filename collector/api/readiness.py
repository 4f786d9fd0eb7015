"""Readiness over HTTP: a service's production-checklist scorecard, its history, and what the team attests."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from collector.api.errors import InvalidFieldError
from collector.api.params import Params, json_body
from collector.api.state import AppState
from collector.query.filters import QueryError
from collector.readiness import checklist, model

DEFAULT_DAYS = 7
DEFAULT_HISTORY_DAYS = 30
MAX_HISTORY_DAYS = 366
MAX_TEXT = 500
MAX_FEATURES = 1000


def routes(state: AppState) -> list[Route]:
    """The readiness routes:

    - `GET /api/v1/readiness?service=&environment=&from=&to=`: the scorecard (default: the last 7 days).
    - `GET /api/v1/readiness/history?service=&environment=&days=30`: `{"service", "environment", "points": [{"day",
      "score"}]}`, one point per UTC day that has calls of the service.
    - `POST /api/v1/readiness/attest` (admin): `{"service", "item": "test.load"|"test.mocked", "by", "link",
      "note"?}` → 201 with the stored attestation; 422 naming the field that is wrong.
    - `PUT /api/v1/readiness/batch-features` (admin): `{"service", "features": [...]}` replaces the service's
      batch-eligible features; `GET ...?service=` lists them.

    "Production" is the environments the collector was started with (`state.production_environments`, from
    `--production-environments`), else `production` and `prod`.
    """
    handlers = _Handlers(state)
    return [
        Route("/api/v1/readiness", handlers.scorecard, methods=["GET"]),
        Route("/api/v1/readiness/history", handlers.history, methods=["GET"]),
        Route("/api/v1/readiness/attest", handlers.attest, methods=["POST"]),
        Route("/api/v1/readiness/batch-features", handlers.batch_features, methods=["GET"]),
        Route("/api/v1/readiness/batch-features", handlers.mark_batch_features, methods=["PUT"]),
    ]


# --- storage ----------------------------------------------------------------------------------------------------


def stored_rules(state: AppState, con: Any) -> list[model.StoredRule]:
    rules = state.alerts.rules(con)
    created = dict(con.execute("SELECT id, created_at FROM alert_rules").fetchall())
    now = datetime.now(tz=UTC)  # a rule deleted between the two reads
    return [model.StoredRule(rule_id, rule, created.get(rule_id, now)) for rule_id, rule in rules]


def attestations(con: Any, service: str) -> list[model.Attestation]:
    rows = con.execute(
        "SELECT item, attested_by, link, note, attested_at FROM readiness_attestations WHERE service = ? ORDER BY id",
        [service],
    ).fetchall()
    return [model.Attestation(*row) for row in rows]


def batch_features(con: Any, service: str) -> list[str]:
    rows = con.execute(
        "SELECT feature FROM readiness_batch_features WHERE service = ? ORDER BY feature", [service]
    ).fetchall()
    return [feature for (feature,) in rows]


def context(state: AppState, con: Any, service: str) -> model.Context:
    return model.Context(
        rules=stored_rules(state, con),
        attestations=attestations(con, service),
        batch_features=batch_features(con, service),
        tokens_required=state.tokens.enabled,
        listen_host=state.listen_host,
    )


def production_environments(state: AppState) -> tuple[str, ...]:
    configured = state.production_environments
    return tuple(configured) if configured else model.PRODUCTION_ENVIRONMENTS


# --- validation -------------------------------------------------------------------------------------------------


def _text(payload: Mapping[str, Any], name: str, *, required: bool = True) -> str | None:
    value = payload.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip():
        raise InvalidFieldError(name, "is required and must be a non-empty string")
    if len(value) > MAX_TEXT:
        raise InvalidFieldError(name, f"must be at most {MAX_TEXT} characters")
    return value.strip()


def parse_attestation(payload: Any) -> dict[str, Any]:
    """The attestation in a request body, or `InvalidFieldError` naming the first field that is wrong."""
    if not isinstance(payload, Mapping):
        raise InvalidFieldError("body", "must be a JSON object")
    unknown = set(payload) - {"service", "item", "by", "link", "note"}
    if unknown:
        raise InvalidFieldError(sorted(unknown)[0], "is not an attestation field")
    service = _text(payload, "service")
    item = payload.get("item")
    if item not in model.ATTESTABLE_ITEMS:
        items = ", ".join(model.ATTESTABLE_ITEMS)
        raise InvalidFieldError("item", f"must be one of {items} (the others are observed only)")
    by = _text(payload, "by")
    link = _text(payload, "link")
    parts = urlsplit(link or "")
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise InvalidFieldError("link", "must be an http(s) URL to the evidence (a CI run, a report, the tests)")
    return {"service": service, "item": item, "by": by, "link": link, "note": _text(payload, "note", required=False)}


def parse_batch_features(payload: Any) -> tuple[str, list[str]]:
    if not isinstance(payload, Mapping):
        raise InvalidFieldError("body", "must be a JSON object")
    unknown = set(payload) - {"service", "features"}
    if unknown:
        raise InvalidFieldError(sorted(unknown)[0], "is not a field here (service, features)")
    service = _text(payload, "service")
    features = payload.get("features")
    if not isinstance(features, list) or not all(isinstance(f, str) and f.strip() for f in features):
        raise InvalidFieldError("features", "must be a list of feature names (an empty list unmarks all)")
    if len(features) > MAX_FEATURES or any(len(f) > MAX_TEXT for f in features):
        raise InvalidFieldError("features", f"at most {MAX_FEATURES} names of at most {MAX_TEXT} characters")
    return service or "", sorted({feature.strip() for feature in features})


def _period(params: Params, now: datetime) -> tuple[datetime, datetime]:
    end = params.time("to") or now
    start = params.time("from") or end - timedelta(days=DEFAULT_DAYS)
    if start >= end:
        raise QueryError("from", "must be before to")
    return start, end


# --- handlers ---------------------------------------------------------------------------------------------------


class _Handlers:
    def __init__(self, state: AppState) -> None:
        self.state = state

    def _scope(self, params: Params, start: datetime, end: datetime) -> model.Scope:
        return model.Scope(
            params.required("service"), start, end, params.optional("environment"),
            production_environments(self.state),
        )  # fmt: skip

    async def scorecard(self, request: Request) -> Response:
        params = Params.of(request)
        scope = self._scope(params, *_period(params, datetime.now(tz=UTC)))

        def run(con: Any) -> dict[str, Any]:
            return checklist.scorecard(con, scope, context(self.state, con, scope.service))

        return JSONResponse(await self.state.read(run))

    async def history(self, request: Request) -> Response:
        params = Params.of(request)
        text = params.optional("days") or str(DEFAULT_HISTORY_DAYS)
        if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= MAX_HISTORY_DAYS:
            raise QueryError("days", f"must be a whole number from 1 to {MAX_HISTORY_DAYS}")
        today = datetime.now(tz=UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        end = today + timedelta(days=1)
        scope = self._scope(params, end - timedelta(days=int(text)), end)

        def run(con: Any) -> list[dict[str, Any]]:
            return checklist.history(con, scope, context(self.state, con, scope.service))

        points = await self.state.read(run)
        return JSONResponse({"service": scope.service, "environment": scope.environment, "points": points})

    async def attest(self, request: Request) -> Response:
        attestation = parse_attestation(await json_body(request))
        now = datetime.now(tz=UTC)
        store = self.state.store

        def insert() -> int:
            with store.transaction() as con:
                attestation_id = store.next_id(con, "readiness_attestation_ids")
                con.execute(
                    "INSERT INTO readiness_attestations (id, service, item, attested_by, link, note, attested_at) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [attestation_id, *attestation.values(), now],
                )
            return attestation_id

        attestation_id = await run_in_threadpool(insert)
        return JSONResponse({"id": attestation_id, **attestation, "at": now.isoformat()}, 201)

    async def batch_features(self, request: Request) -> Response:
        service = Params.of(request).required("service")
        features = await self.state.read(lambda con: batch_features(con, service))
        return JSONResponse({"service": service, "features": features})

    async def mark_batch_features(self, request: Request) -> Response:
        service, features = parse_batch_features(await json_body(request))
        now = datetime.now(tz=UTC)
        store = self.state.store

        def replace() -> None:
            with store.transaction() as con:
                con.execute("DELETE FROM readiness_batch_features WHERE service = ?", [service])
                if features:
                    con.executemany(
                        "INSERT INTO readiness_batch_features VALUES (?, ?, ?)",
                        [[service, feature, now] for feature in features],
                    )

        await run_in_threadpool(replace)
        return JSONResponse({"service": service, "features": features})
