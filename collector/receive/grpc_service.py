"""OTLP/gRPC TraceService on its own port, feeding the same ingest path as OTLP/HTTP.

The request arrives as bytes (no deserializer registered): it is decoded where OTLP/HTTP bodies are, in the ingest
pool (collector/receive/pool.py), not on gRPC's thread in the collector's process.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor

import grpc
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from collector.api.auth import AuthError, Tokens
from collector.ingest.pipeline import Ingest, response_for
from collector.ingest.writer import OverloadedError
from collector.metrics import Metrics
from collector.receive import otlp
from collector.receive.pool import DecodePool

log = logging.getLogger("llmledger.collector")
SERVICE = "opentelemetry.proto.collector.trace.v1.TraceService"


class TraceReceiver:
    def __init__(self, ingest: Ingest, decode_pool: DecodePool, metrics: Metrics, tokens: Tokens) -> None:
        self.ingest = ingest
        self.decode_pool = decode_pool
        self.metrics = metrics
        self.tokens = tokens

    def export(self, request: bytes, context: grpc.ServicerContext) -> ExportTraceServiceResponse:
        """TraceService/Export: the serialized `ExportTraceServiceRequest`, answered after its rows commit."""
        authorization = dict(context.invocation_metadata()).get("authorization")
        try:
            self.tokens.authorize("ingest", authorization)
        except AuthError as error:
            self.metrics.add("llmledger_requests_unauthorized_total", status=str(error.status))
            code = grpc.StatusCode.UNAUTHENTICATED if error.status == 401 else grpc.StatusCode.PERMISSION_DENIED
            context.abort(code, error.message)
        try:
            prepared = self.ingest.submit_normalized(self.decode_pool.decode(request, otlp.PROTOBUF))
            prepared.future.result()
        except otlp.OtlpError as error:
            self.metrics.add("llmledger_requests_rejected_total", reason="grpc_invalid_argument")
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, error.message)
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
    ingest: Ingest,
    decode_pool: DecodePool,
    metrics: Metrics,
    tokens: Tokens,
    host: str,
    port: int,
    max_message_bytes: int,
) -> tuple[grpc.Server, int]:
    """Start the gRPC receiver; returns the server and the port it bound (useful with port 0)."""
    server = grpc.server(
        ThreadPoolExecutor(max_workers=8, thread_name_prefix="llmledger-grpc"),
        # No SO_REUSEPORT (gRPC's default): a second collector on the same port must fail, not share it.
        options=[("grpc.max_receive_message_length", max_message_bytes), ("grpc.so_reuseport", 0)],
    )
    receiver = TraceReceiver(ingest, decode_pool, metrics, tokens)
    export = grpc.unary_unary_rpc_method_handler(
        receiver.export, response_serializer=ExportTraceServiceResponse.SerializeToString
    )
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, {"Export": export}),))
    bound = server.add_insecure_port(f"{host}:{port}")
    server.start()
    log.info("OTLP/gRPC listening on %s:%d", host, bound)
    return server, bound
