"""The collector's HTTP face: OTLP/HTTP receiver, query API, health and metrics (Starlette)."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
from google.rpc.status_pb2 import Status
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest, ExportLogsServiceResponse
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

from collector.alerts import notify
from collector.alerts.engine import preview
from collector.alerts.notify import Notice, Notifier
from collector.alerts.rules import Rule, RuleError, parse_rule
from collector.alerts.store import AlertStore
from collector.api.auth import AuthError, Tokens, scope_for
from collector.api.readiness import routes as readiness_routes
from collector.api.reconciliation import routes as reconciliation_routes
from collector.ingest.pipeline import Ingest, response_for
from collector.ingest.writer import OverloadedError
from collector.metrics import Metrics
from collector.money import reprice
from collector.query import exports, reads, reports
from collector.query.filters import DEFAULT_LIMIT, MAX_LIMIT, Filters, QueryError, jsonable
from collector.receive import otlp
from collector.store import backup
from collector.store.file import Store

RETRY_AFTER_SECONDS = "1"
log = logging.getLogger("llmledger.collector")


class _AlertRoutes:
    """Alert rules CRUD and events; changes go through the store's one writing connection."""

    store: Store
    alerts: AlertStore
    notifier: Notifier
    read: Callable[[Callable[[Any], Any]], Awaitable[Any]]

    async def _rule_from(self, request: Request) -> Rule | Response:
        try:
            payload = await request.json()
        except ValueError:
            return JSONResponse({"error": "body is not valid JSON", "field": "body"}, 400)
        try:
            return parse_rule(payload)
        except RuleError as error:
            return JSONResponse({"error": error.message, "field": error.field}, 422)

    async def list_rules(self, request: Request) -> Response:
        return JSONResponse({"rules": await self.read(self.alerts.shown)})

    async def get_rule(self, request: Request) -> Response:
        rule_id = request.path_params["rule_id"]
        shown = await self.read(lambda con: self.alerts.shown(con, rule_id))
        return JSONResponse(shown[0]) if shown else JSONResponse({"error": f"no alert rule {rule_id}"}, 404)

    async def create_rule(self, request: Request) -> Response:
        rule = await self._rule_from(request)
        if isinstance(rule, Response):
            return rule
        try:
            rule_id = await run_in_threadpool(self.alerts.create, rule, datetime.now(tz=UTC))
        except RuleError as error:
            return JSONResponse({"error": error.message, "field": error.field}, 422)
        return JSONResponse({"id": rule_id}, 201)

    async def update_rule(self, request: Request) -> Response:
        rule = await self._rule_from(request)
        if isinstance(rule, Response):
            return rule
        rule_id = request.path_params["rule_id"]
        try:
            found = await run_in_threadpool(self.alerts.update, rule_id, rule, datetime.now(tz=UTC))
        except RuleError as error:
            return JSONResponse({"error": error.message, "field": error.field}, 422)
        if not found:
            return JSONResponse({"error": f"no alert rule {rule_id}"}, 404)
        return JSONResponse({"id": rule_id})

    async def delete_rule(self, request: Request) -> Response:
        rule_id = request.path_params["rule_id"]
        if not await run_in_threadpool(self.alerts.delete, rule_id):
            return JSONResponse({"error": f"no alert rule {rule_id}"}, 404)
        return Response(status_code=204)

    async def preview_rule(self, request: Request) -> Response:
        """A draft rule (not stored) replayed over the last 7 days, hour by hour."""
        rule = await self._rule_from(request)
        if isinstance(rule, Response):
            return rule
        return JSONResponse(await self.read(lambda con: preview(con, rule, datetime.now(tz=UTC))))

    async def test_rule(self, request: Request) -> Response:
        """Send a test notification to every channel of a stored rule (delivered in the background)."""
        rule_id = request.path_params["rule_id"]
        rules = dict(await self.read(self.alerts.rules))
        if rule_id not in rules:
            return JSONResponse({"error": f"no alert rule {rule_id}"}, 404)
        rule = rules[rule_id]
        if not rule.channels:
            return JSONResponse({"error": "this rule has no channels to notify", "field": "channels"}, 422)
        self.notifier.send(Notice(0, rule_id, rule, "test", None, datetime.now(tz=UTC)))
        return JSONResponse({"channels": len(rule.channels)}, 202)

    async def notification_attempts(self, request: Request) -> Response:
        rows = await self.read(notify.attempts)
        return JSONResponse({"attempts": rows})

    async def alert_events(self, request: Request) -> Response:
        params = _params(request)
        try:
            limit = _whole_number(params, "limit", 100)
            rule_text = _single(params, "rule_id", None)
            if rule_text is not None and not (rule_text.isascii() and rule_text.isdigit()):
                raise QueryError("rule_id", f"{rule_text!r} is not a rule id")
            if not 1 <= limit <= MAX_LIMIT:
                raise QueryError("limit", f"must be between 1 and {MAX_LIMIT}")
        except QueryError as error:
            return JSONResponse({"error": error.message, "parameter": error.parameter}, 400)
        rule_id = int(rule_text) if rule_text is not None else None
        events = await self.read(lambda con: self.alerts.events(con, limit, rule_id))
        return JSONResponse({"events": events})


class CollectorApp(_AlertRoutes):
    def __init__(
        self, store: Store, ingest: Ingest, metrics: Metrics, *, max_body_bytes: int, tokens: Tokens | None = None
    ) -> None:
        self.store = store
        self.tokens = tokens or Tokens()
        self.alerts = AlertStore(store)
        self.ingest = ingest
        self.metrics = metrics
        self.max_body_bytes = max_body_bytes
        self._readers = threading.local()
        self.ready = False

    def starlette(self) -> Starlette:
        routes = [
            Route("/v1/traces", self.traces, methods=["POST"]),
            Route("/v1/metrics", self.otlp_metrics, methods=["POST"]),
            Route("/v1/logs", self.otlp_logs, methods=["POST"]),
            Route("/healthz", self.healthz, methods=["GET"]),
            Route("/metrics", self.prometheus, methods=["GET"]),
            Route("/api/v1/summary", self.summary, methods=["GET"]),
            Route("/api/v1/timeseries", self.timeseries, methods=["GET"]),
            Route("/api/v1/calls", self.calls, methods=["GET"]),
            Route("/api/v1/breakdown", self.breakdown, methods=["GET"]),
            Route("/api/v1/latency_histogram", self.latency_histogram, methods=["GET"]),
            Route("/api/v1/export.csv", self.export_csv, methods=["GET"]),
            Route("/api/v1/alert-rules", self.list_rules, methods=["GET"]),
            Route("/api/v1/alert-rules", self.create_rule, methods=["POST"]),
            Route("/api/v1/alert-rules/preview", self.preview_rule, methods=["POST"]),
            Route("/api/v1/alert-rules/{rule_id:int}/test", self.test_rule, methods=["POST"]),
            Route("/api/v1/alert-rules/{rule_id:int}", self.get_rule, methods=["GET"]),
            Route("/api/v1/alert-rules/{rule_id:int}", self.update_rule, methods=["PUT"]),
            Route("/api/v1/alert-rules/{rule_id:int}", self.delete_rule, methods=["DELETE"]),
            Route("/api/v1/alert-events", self.alert_events, methods=["GET"]),
            Route("/api/v1/notification-attempts", self.notification_attempts, methods=["GET"]),
            Route("/api/v1/backup", self.backup, methods=["POST"]),
            *reconciliation_routes(self),
            *readiness_routes(self),
            Route("/api/v1/reprice", self.reprice, methods=["POST"]),
            Route("/api/v1/reprice-runs", self.reprice_runs, methods=["GET"]),
        ]
        known_paths = frozenset(route.path for route in routes)
        timing = Middleware(_RequestTiming, metrics=self.metrics, known_paths=known_paths)
        authorize = Middleware(_Authorize, tokens=self.tokens, metrics=self.metrics)
        return Starlette(routes=routes, middleware=[timing, authorize])

    # --- OTLP -----------------------------------------------------------------------------------

    async def _read_otlp(self, request: Request) -> tuple[bytes, str]:
        kind = otlp.media_type(request.headers.get("content-type"))
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > self.max_body_bytes:
            raise otlp.OtlpError(413, f"body of {declared} bytes is larger than the limit of {self.max_body_bytes}")
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > self.max_body_bytes:
                raise otlp.OtlpError(413, f"body is larger than the limit of {self.max_body_bytes} bytes")
            chunks.append(chunk)
        body = otlp.decompress(b"".join(chunks), request.headers.get("content-encoding"), self.max_body_bytes)
        return body, kind

    def _refuse(self, error: otlp.OtlpError, kind: str | None, reason: str) -> Response:
        self.metrics.add("llmledger_requests_rejected_total", reason=reason)
        headers = {"Retry-After": RETRY_AFTER_SECONDS} if error.status == 503 else None
        if kind is None:
            return JSONResponse({"code": error.status, "message": error.message}, error.status, headers=headers)
        status = Status(code=_GRPC_CODES.get(error.status, 3), message=error.message)
        return Response(otlp.serialize(status, kind), error.status, headers=headers, media_type=kind)

    async def traces(self, request: Request) -> Response:
        kind = None
        try:
            body, kind = await self._read_otlp(request)
            message = await run_in_threadpool(otlp.parse, ExportTraceServiceRequest(), body, kind)
            prepared = await run_in_threadpool(self.ingest.submit, message)
            await asyncio.wrap_future(prepared.future)
        except otlp.OtlpError as error:
            return self._refuse(error, kind, reason=str(error.status))
        except OverloadedError as exc:
            return self._refuse(otlp.OtlpError(503, f"collector is overloaded ({exc}); retry later"), kind, "503")
        except Exception as exc:  # e.g. the disk is full: retryable, and nothing was acknowledged
            log.exception("storing an OTLP request failed")
            error = otlp.OtlpError(503, f"could not store the spans ({type(exc).__name__}); retry later")
            return self._refuse(error, kind, "503")
        return Response(otlp.serialize(response_for(prepared.rejected), kind), 200, media_type=kind)

    async def otlp_metrics(self, request: Request) -> Response:
        return await self._count_only(request, ExportMetricsServiceRequest(), ExportMetricsServiceResponse())

    async def otlp_logs(self, request: Request) -> Response:
        return await self._count_only(request, ExportLogsServiceRequest(), ExportLogsServiceResponse())

    async def _count_only(self, request: Request, message: Any, response: Any) -> Response:
        """Metrics and logs are accepted (exporters that send them aren't failing) and counted, not stored."""
        kind = None
        try:
            body, kind = await self._read_otlp(request)
            await run_in_threadpool(otlp.parse, message, body, kind)
        except otlp.OtlpError as error:
            return self._refuse(error, kind, reason=str(error.status))
        if isinstance(message, ExportMetricsServiceRequest):
            points = sum(
                len(getattr(metric, metric.WhichOneof("data")).data_points) if metric.WhichOneof("data") else 0
                for resource in message.resource_metrics
                for scope in resource.scope_metrics
                for metric in scope.metrics
            )
            self.metrics.add("llmledger_metrics_points_received_total", points)
        else:
            records = sum(len(scope.log_records) for resource in message.resource_logs for scope in resource.scope_logs)
            self.metrics.add("llmledger_log_records_received_total", records)
        return Response(otlp.serialize(response, kind), 200, media_type=kind)

    # --- health and metrics ---------------------------------------------------------------------

    async def healthz(self, request: Request) -> Response:
        if not self.ready:
            return JSONResponse({"status": "starting"}, 503)
        return JSONResponse({"status": "ok", "database": self.store.path})

    async def prometheus(self, request: Request) -> Response:
        return PlainTextResponse(self.metrics.render(), media_type="text/plain; version=0.0.4")

    # --- query API ------------------------------------------------------------------------------

    async def read(self, query: Callable[[Any], Any]) -> Any:
        """Run `query` on this worker thread's reading cursor, off the event loop, and end what it left open."""

        def run() -> Any:
            cursor = getattr(self._readers, "cursor", None)
            if cursor is None:
                cursor = self._readers.cursor = self.store.reader()
            try:
                return query(cursor)
            finally:
                try:
                    self.store.finish_reading(cursor)
                except duckdb.Error:  # a broken cursor: the next request on this thread gets a new one
                    self._readers.cursor = None
                    cursor.close()

        return await run_in_threadpool(run)

    async def _query(self, request: Request, run: Callable[[Any, dict[str, list[str]]], Any]) -> Response:
        params = _params(request)
        try:
            result = await self.read(lambda con: run(con, params))
        except QueryError as error:
            return JSONResponse({"error": error.message, "parameter": error.parameter}, 400)
        return JSONResponse(result)

    async def summary(self, request: Request) -> Response:
        return await self._query(request, lambda con, params: reads.summary(con, Filters.from_params(params)))

    async def timeseries(self, request: Request) -> Response:
        def run(con: Any, params: dict[str, list[str]]) -> Any:
            metric = _single(params, "metric", None)
            if metric is None:
                raise QueryError("metric", "is required")
            return reads.timeseries(
                con,
                Filters.from_params(params),
                metric,
                _single(params, "bucket", "auto"),
                _single(params, "group_by", None) or None,
            )

        return await self._query(request, run)

    async def calls(self, request: Request) -> Response:
        def run(con: Any, params: dict[str, list[str]]) -> Any:
            limit = _whole_number(params, "limit", DEFAULT_LIMIT)
            filters = Filters.from_params(params)
            cursor = _single(params, "cursor", None)
            return reads.calls(con, filters, limit, cursor, _single(params, "order", "newest"))

        return await self._query(request, run)

    async def breakdown(self, request: Request) -> Response:
        def run(con: Any, params: dict[str, list[str]]) -> Any:
            group_by = _single(params, "group_by", None)
            if not group_by:
                raise QueryError("group_by", "is required")
            limit = _whole_number(params, "limit", 20)
            filters = Filters.from_params(params)
            # Savings at the rates the book prices with, negotiated overrides included.
            return reports.breakdown(con, filters, group_by, limit, self.ingest.price_book.rates)

        return await self._query(request, run)

    async def latency_histogram(self, request: Request) -> Response:
        def run(con: Any, params: dict[str, list[str]]) -> Any:
            metric = _single(params, "metric", "duration_ms")
            bins = _whole_number(params, "bins", 30)
            return reports.latency_histogram(con, Filters.from_params(params), metric, bins)

        return await self._query(request, run)

    async def export_csv(self, request: Request) -> Response:
        params = _params(request)
        kind = _single(params, "kind", "finance")
        period = _single(params, "period", "day")

        try:
            filters = Filters.from_params(params)
            exports.check(kind, period)
        except QueryError as error:
            return JSONResponse({"error": error.message, "parameter": error.parameter}, 400)

        def chunks() -> Iterator[str]:
            # Its own cursor: the chunks are produced on whichever worker thread Starlette iterates them in.
            cursor = self.store.reader()
            try:
                yield from exports.export_csv(cursor, filters, kind, period)
            finally:
                cursor.close()

        headers = {"Content-Disposition": f'attachment; filename="llmledger-{kind}.csv"'}
        return StreamingResponse(chunks(), media_type="text/csv; charset=utf-8", headers=headers)

    async def backup(self, request: Request) -> Response:
        try:
            payload = await request.json()
        except ValueError:
            return JSONResponse({"error": "body is not valid JSON", "field": "body"}, 400)
        target = payload.get("to") if isinstance(payload, dict) else None
        if not isinstance(target, str) or not target:
            return JSONResponse({"error": "'to' must name a folder on the collector's machine", "field": "to"}, 400)
        try:
            return JSONResponse(await run_in_threadpool(backup.backup, self.store, Path(target)))
        except backup.BackupError as error:
            return JSONResponse({"error": str(error), "field": "to"}, 400)

    async def reprice(self, request: Request) -> Response:
        params = _params(request)
        try:
            filters = Filters.from_params({key: params[key] for key in ("from", "to") if key in params})
            for name, bound in (("from", filters.start), ("to", filters.end)):
                if bound is None:
                    raise QueryError(name, "is required: re-pricing works on a stated range")
            dry_run = _boolean(params, "dry_run")
        except QueryError as error:
            return JSONResponse({"error": error.message, "parameter": error.parameter}, 400)
        result = await run_in_threadpool(
            lambda: reprice.reprice(
                self.store, self.ingest.price_book, filters.start, filters.end, dry_run=dry_run, now=datetime.now(UTC)
            )
        )
        return JSONResponse(result.as_json())

    async def reprice_runs(self, request: Request) -> Response:
        def run(con: Any, params: dict[str, list[str]]) -> Any:
            rows = con.execute(
                "SELECT id, ran_at, from_time, to_time, dry_run, price_version, rows_seen, rows_changed, "
                "costs_changed, old_total_usd, new_total_usd FROM reprice_runs ORDER BY id DESC LIMIT 100"
            )
            names = [column[0] for column in rows.description]
            return {"runs": [{n: jsonable(v) for n, v in zip(names, row, strict=True)} for row in rows.fetchall()]}

        return await self._query(request, run)


class _RequestTiming:
    """ASGI middleware: request count and latency per known path, for /metrics."""

    def __init__(self, app: Any, metrics: Metrics, known_paths: frozenset[str]) -> None:
        self.app = app
        self.metrics = metrics
        self.known_paths = known_paths

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_and_note(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            path = scope["path"] if scope["path"] in self.known_paths else "other"
            self.metrics.observe("llmledger_request_seconds", time.perf_counter() - started, path=path)
            self.metrics.add("llmledger_requests_total", path=path, status=str(status))


class _Authorize:
    """ASGI middleware: every request but `/healthz` carries the token its endpoint needs (see collector.api.auth)."""

    def __init__(self, app: Any, tokens: Tokens, metrics: Metrics) -> None:
        self.app = app
        self.tokens = tokens
        self.metrics = metrics

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            authorization = Request(scope).headers.get("authorization")
            try:
                self.tokens.authorize(scope_for(scope["method"], scope["path"]), authorization)
            except AuthError as error:
                self.metrics.add("llmledger_requests_unauthorized_total", status=str(error.status))
                headers = {"WWW-Authenticate": "Bearer"} if error.status == 401 else None
                await JSONResponse({"error": error.message}, error.status, headers=headers)(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _params(request: Request) -> dict[str, list[str]]:
    params: dict[str, list[str]] = {}
    for key, value in request.query_params.multi_items():
        params.setdefault(key, []).append(value)
    return params


def _whole_number(params: dict[str, list[str]], name: str, default: int) -> int:
    text = _single(params, name, str(default))
    if not (text.isascii() and text.isdigit()):
        raise QueryError(name, f"{text!r} is not a whole number")
    return int(text)


def _boolean(params: dict[str, list[str]], name: str) -> bool:
    text = str(_single(params, name, "false")).lower()
    if text not in ("true", "false", "1", "0"):
        raise QueryError(name, f"{text!r} is not true or false")
    return text in ("true", "1")


def _single(params: dict[str, list[str]], name: str, default: Any) -> Any:
    values = params.get(name)
    return values[-1] if values else default


# HTTP status → google.rpc.Code for error bodies.
_GRPC_CODES = {400: 3, 413: 3, 415: 3, 503: 14}
