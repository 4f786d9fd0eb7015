"""OTLP/gRPC TraceService on its own port, feeding the same ingest path as OTLP/HTTP."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor

import grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from collector.api.auth import AuthError, Tokens
from collector.ingest.pipeline import Ingest, response_for
from collector.ingest.writer import OverloadedError
from collector.metrics import Metrics

log = logging.getLogger("llmledger.collector")


class TraceReceiver(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self, ingest: Ingest, metrics: Metrics, tokens: Tokens) -> None:
        self.ingest = ingest
        self.metrics = metrics
        self.tokens = tokens

    def Export(  # noqa: N802 - the generated service's method name
        self, request: ExportTraceServiceRequest, context: grpc.ServicerContext
    ) -> ExportTraceServiceResponse:
        authorization = dict(context.invocation_metadata()).get("authorization")
        try:
            self.tokens.authorize("ingest", authorization)
        except AuthError as error:
            self.metrics.add("llmledger_requests_unauthorized_total", status=str(error.status))
            code = grpc.StatusCode.UNAUTHENTICATED if error.status == 401 else grpc.StatusCode.PERMISSION_DENIED
            context.abort(code, error.message)
        try:
            prepared = self.ingest.submit(request)
            prepared.future.result()
        except OverloadedError as exc:
            self.metrics.add("llmledger_requests_rejected_total", reason="grpc_unavailable")
            context.abort(grpc.StatusCode.UNAVAILABLE, f"collector is overloaded ({exc}); retry later")
        except Exception as exc:  # retryable: nothing was acknowledged
            log.exception("storing an OTLP/gRPC request failed")
            self.metrics.add("llmledger_requests_rejected_total", reason="grpc_unavailable")
            context.abort(grpc.StatusCode.UNAVAILABLE, f"could not store the spans ({type(exc).__name__}); retry later")
        self.metrics.add("llmledger_requests_total", path="grpc:TraceService/Export", status="OK")
        return response_for(prepared.rejected)


def start_grpc(
    ingest: Ingest, metrics: Metrics, tokens: Tokens, host: str, port: int, max_message_bytes: int
) -> tuple[grpc.Server, int]:
    """Start the gRPC receiver; returns the server and the port it bound (useful with port 0)."""
    server = grpc.server(
        ThreadPoolExecutor(max_workers=8, thread_name_prefix="llmledger-grpc"),
        # No SO_REUSEPORT (gRPC's default): a second collector on the same port must fail, not share it.
        options=[("grpc.max_receive_message_length", max_message_bytes), ("grpc.so_reuseport", 0)],
    )
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(TraceReceiver(ingest, metrics, tokens), server)
    bound = server.add_insecure_port(f"{host}:{port}")
    server.start()
    log.info("OTLP/gRPC listening on %s:%d", host, bound)
    return server, bound
