"""Alert rules over HTTP: CRUD, a draft's preview, a test notification, the events (and acknowledging a firing one)
and the delivery attempts."""

from __future__ import annotations

from datetime import UTC, datetime

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from collector.alerts import notify
from collector.alerts.notify import Notice
from collector.alerts.preview import preview
from collector.alerts.rules import Rule, parse_rule
from collector.alerts.store import AckError
from collector.api.errors import ConflictError, InvalidFieldError, NotFoundError
from collector.api.params import Params, json_body
from collector.api.state import AppState
from collector.query.filters import MAX_LIMIT, QueryError


def routes(state: AppState) -> list[Route]:
    handlers = _Handlers(state)
    return [
        Route("/api/v1/alert-rules", handlers.list_rules, methods=["GET"]),
        Route("/api/v1/alert-rules", handlers.create_rule, methods=["POST"]),
        Route("/api/v1/alert-rules/preview", handlers.preview_rule, methods=["POST"]),
        Route("/api/v1/alert-rules/{rule_id:int}/test", handlers.test_rule, methods=["POST"]),
        Route("/api/v1/alert-rules/{rule_id:int}", handlers.get_rule, methods=["GET"]),
        Route("/api/v1/alert-rules/{rule_id:int}", handlers.update_rule, methods=["PUT"]),
        Route("/api/v1/alert-rules/{rule_id:int}", handlers.delete_rule, methods=["DELETE"]),
        Route("/api/v1/alert-events", handlers.alert_events, methods=["GET"]),
        Route("/api/v1/alert-events/{event_id:int}/ack", handlers.acknowledge, methods=["POST"]),
        Route("/api/v1/notification-attempts", handlers.notification_attempts, methods=["GET"]),
    ]


def _no_rule(rule_id: int) -> NotFoundError:
    return NotFoundError(f"no alert rule {rule_id}")


class _Handlers:
    """Changes go through the store's one writing connection (`AlertStore`), reads through `state.read`."""

    def __init__(self, state: AppState) -> None:
        self.state = state
        self.alerts = state.alerts

    async def _rule_from(self, request: Request) -> Rule:
        return parse_rule(await json_body(request))

    async def list_rules(self, request: Request) -> Response:
        return JSONResponse({"rules": await self.state.read(self.alerts.shown)})

    async def get_rule(self, request: Request) -> Response:
        rule_id = request.path_params["rule_id"]
        shown = await self.state.read(lambda con: self.alerts.shown(con, rule_id))
        if not shown:
            raise _no_rule(rule_id)
        return JSONResponse(shown[0])

    async def create_rule(self, request: Request) -> Response:
        rule = await self._rule_from(request)
        rule_id = await run_in_threadpool(self.alerts.create, rule, datetime.now(tz=UTC))
        return JSONResponse({"id": rule_id}, 201)

    async def update_rule(self, request: Request) -> Response:
        rule = await self._rule_from(request)
        rule_id = request.path_params["rule_id"]
        if not await run_in_threadpool(self.alerts.update, rule_id, rule, datetime.now(tz=UTC)):
            raise _no_rule(rule_id)
        return JSONResponse({"id": rule_id})

    async def delete_rule(self, request: Request) -> Response:
        rule_id = request.path_params["rule_id"]
        if not await run_in_threadpool(self.alerts.delete, rule_id):
            raise _no_rule(rule_id)
        return Response(status_code=204)

    async def preview_rule(self, request: Request) -> Response:
        """A draft rule (not stored) replayed over the last 7 days, hour by hour."""
        rule = await self._rule_from(request)
        return JSONResponse(await self.state.read(lambda con: preview(con, rule, datetime.now(tz=UTC))))

    async def test_rule(self, request: Request) -> Response:
        """Send a test notification to every channel of a stored rule (delivered in the background)."""
        rule_id = request.path_params["rule_id"]
        rules = dict(await self.state.read(self.alerts.rules))
        if rule_id not in rules:
            raise _no_rule(rule_id)
        rule = rules[rule_id]
        if not rule.channels:
            raise InvalidFieldError("channels", "this rule has no channels to notify")
        self.state.notifier.send(Notice(0, rule_id, rule, "test", None, datetime.now(tz=UTC)))
        return JSONResponse({"channels": len(rule.channels)}, 202)

    async def notification_attempts(self, request: Request) -> Response:
        return JSONResponse({"attempts": await self.state.read(notify.attempts)})

    async def alert_events(self, request: Request) -> Response:
        params = Params.of(request)
        limit = params.whole_number("limit", 100)
        rule_text = params.single("rule_id", None)
        if rule_text is not None and not (rule_text.isascii() and rule_text.isdigit()):
            raise QueryError("rule_id", f"{rule_text!r} is not a rule id")
        if not 1 <= limit <= MAX_LIMIT:
            raise QueryError("limit", f"must be between 1 and {MAX_LIMIT}")
        rule_id = int(rule_text) if rule_text is not None else None
        events = await self.state.read(lambda con: self.alerts.events(con, limit, rule_id))
        return JSONResponse({"events": events})

    async def acknowledge(self, request: Request) -> Response:
        """`{"by": who}`: who is on a firing alert; shown with the event and, while it lasts, the rule's state."""
        event_id = request.path_params["event_id"]
        body = await json_body(request)
        by = body.get("by") if isinstance(body, dict) else None
        if not isinstance(by, str) or not by.strip() or len(by) > 200:
            raise InvalidFieldError("by", "is required: who acknowledges, in at most 200 characters")
        try:
            event = await run_in_threadpool(self.alerts.acknowledge, event_id, by.strip(), datetime.now(tz=UTC))
        except AckError as exc:
            raise ConflictError(str(exc)) from None
        if event is None:
            raise NotFoundError(f"no alert event {event_id}")
        return JSONResponse(event)
