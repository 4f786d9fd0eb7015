"""The OTLP/HTTP receiving edge: POST /v1/traces (ingested), /v1/metrics and /v1/logs (counted, not stored)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest, ExportLogsServiceResponse
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from collector.api.errors import OtlpRefusedError
from collector.api.state import AppState
from collector.ingest.pipeline import Prepared, response_for
from collector.ingest.writer import OverloadedError
from collector.receive import otlp

log = logging.getLogger("llmledger.collector")


def routes(state: AppState) -> list[Route]:
    handlers = _Handlers(state)
    return [
        Route("/v1/traces", handlers.traces, methods=["POST"]),
        Route("/v1/metrics", handlers.otlp_metrics, methods=["POST"]),
        Route("/v1/logs", handlers.otlp_logs, methods=["POST"]),
    ]


class _Handlers:
    def __init__(self, state: AppState) -> None:
        self.state = state

    async def _read_otlp(self, request: Request) -> tuple[bytes, str]:
        limit = self.state.max_body_bytes
        kind = otlp.media_type(request.headers.get("content-type"))
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > limit:
            raise otlp.OtlpError(413, f"body of {declared} bytes is larger than the limit of {limit}")
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise otlp.OtlpError(413, f"body is larger than the limit of {limit} bytes")
            chunks.append(chunk)
        body = otlp.decompress(b"".join(chunks), request.headers.get("content-encoding"), limit)
        return body, kind

    def _store(self, body: bytes, kind: str) -> Prepared:
        """Decode (in the ingest pool, or on this thread without one), price and queue the rows."""
        return self.state.ingest.submit_normalized(self.state.decode_pool.decode(body, kind))

    def _refused(self, error: otlp.OtlpError, kind: str | None) -> OtlpRefusedError:
        self.state.metrics.add("llmledger_requests_rejected_total", reason=str(error.status))
        return OtlpRefusedError(error, kind)

    async def traces(self, request: Request) -> Response:
        kind = None
        try:
            body, kind = await self._read_otlp(request)
            prepared = await run_in_threadpool(self._store, body, kind)
            await asyncio.wrap_future(prepared.future)
        except otlp.OtlpError as error:
            raise self._refused(error, kind) from None
        except OverloadedError as exc:
            raise self._refused(otlp.OtlpError(503, f"collector is overloaded ({exc}); retry later"), kind) from None
        except Exception as exc:  # e.g. the disk is full: retryable, and nothing was acknowledged
            log.exception("storing an OTLP request failed")
            error = otlp.OtlpError(503, f"could not store the spans ({type(exc).__name__}); retry later")
            raise self._refused(error, kind) from None
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
            raise self._refused(error, kind) from None
        if isinstance(message, ExportMetricsServiceRequest):
            points = sum(
                len(getattr(metric, metric.WhichOneof("data")).data_points) if metric.WhichOneof("data") else 0
                for resource in message.resource_metrics
                for scope in resource.scope_metrics
                for metric in scope.metrics
            )
            self.state.metrics.add("llmledger_metrics_points_received_total", points)
        else:
            records = sum(len(scope.log_records) for resource in message.resource_logs for scope in resource.scope_logs)
            self.state.metrics.add("llmledger_log_records_received_total", records)
        return Response(otlp.serialize(response, kind), 200, media_type=kind)
