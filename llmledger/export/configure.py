"""`configure()`: export spans to the llmledger collector, for apps without their own OpenTelemetry set-up."""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from llmledger import config, diagnostics
from llmledger import semconv as sc
from llmledger.context import use_spool_dir
from llmledger.export.spool import SpoolingExporter, SpoolStatus
from llmledger.wrapper.finisher import finisher

log = logging.getLogger("llmledger")

_lock = threading.Lock()
_configured: tuple[TracerProvider, SpoolingExporter] | None = None


class CountingBatchSpanProcessor(BatchSpanProcessor):
    """The SDK's batching processor, counting the spans it drops when its queue is full (the SDK only logs
    them), and flushing its exporter too on `force_flush` (the SDK's leaves the exporter alone)."""

    def on_end(self, span: ReadableSpan) -> None:
        queue = getattr(getattr(self, "_batch_processor", None), "_queue", None)  # private: counted when there
        sampled = span.context is not None and span.context.trace_flags.sampled
        if sampled and queue is not None and queue.maxlen is not None and len(queue) >= queue.maxlen:
            diagnostics.count("spans dropped: export queue full")
        super().on_end(span)

    def force_flush(self, timeout_millis: int | None = None) -> bool:
        timeout = 30_000 if timeout_millis is None else timeout_millis
        done = super().force_flush(timeout)
        return self.span_exporter.force_flush(timeout) and done


def parse_headers(text: str | None) -> dict[str, str]:
    """`k1=v1,k2=v2` (the OTEL_EXPORTER_OTLP_HEADERS format) as a dict."""
    headers: dict[str, str] = {}
    for item in (text or "").split(","):
        if "=" in item:
            key, value = item.split("=", 1)
            headers[key.strip()] = value.strip()
    return headers


def traces_url(endpoint: str) -> str:
    return endpoint.rstrip("/") + "/v1/traces"


def spool_folder(spool_dir: Path, url: str) -> Path:
    """One folder per collector URL: apps sharing the default spool folder but sending to different
    collectors (say production and a local demo) never deliver each other's spans."""
    return spool_dir / f"traces-{hashlib.sha256(url.encode()).hexdigest()[:16]}"


def configure(
    *,
    endpoint: str | None = None,
    service_name: str | None = None,
    environment: str | None = None,
    service_version: str | None = None,
    spool_dir: str | Path | None = None,
    headers: Mapping[str, str] | None = None,
) -> TracerProvider:
    """Send spans to the collector over OTLP/HTTP protobuf with a batching processor.

    Exporting runs on background threads; a full queue drops spans (counted) rather than slow the app.
    While the collector is unreachable or answers a retryable error, batches wait in `spool_dir` (a
    folder per collector URL, capped at `LLMLEDGER_SPOOL_MAX_BYTES`, oldest dropped first and counted) and
    are re-sent in order with backoff, by this process or the next one started with the same folder.

    Keyword arguments win over environment variables (`LLMLEDGER_ENDPOINT`, the standard `OTEL_*`,
    `LLMLEDGER_INGEST_TOKEN`, `LLMLEDGER_SPOOL_DIR`). An app that already has an SDK tracer provider keeps
    it, with our exporter added; otherwise a new provider becomes the global one. Calling it again changes
    nothing.
    """
    global _configured
    with _lock:
        if _configured is not None:
            return _configured[0]
        if spool_dir is not None:
            use_spool_dir(Path(spool_dir))
        export_headers = parse_headers(config.resolve("otlp_headers"))
        token = config.resolve("ingest_token")
        if token:
            export_headers["Authorization"] = f"Bearer {token}"
        export_headers.update(headers or {})
        url = (
            traces_url(endpoint)
            if endpoint
            else config.resolve("traces_endpoint") or traces_url(config.resolve("endpoint"))
        )
        exporter = SpoolingExporter(
            url,
            spool_folder(Path(config.resolve("spool_dir", spool_dir)), url),
            headers=export_headers,
            max_bytes=config.resolve("spool_max_bytes"),
            retry_max_s=config.resolve("spool_retry_max_s"),
        )
        processor = CountingBatchSpanProcessor(
            exporter,
            max_queue_size=config.resolve("export_queue_size"),
            max_export_batch_size=config.resolve("export_batch_size"),
            schedule_delay_millis=config.resolve("export_delay_ms"),
        )
        provider = trace.get_tracer_provider()
        if isinstance(provider, TracerProvider):
            provider.add_span_processor(processor)
        else:
            provider = TracerProvider(resource=_resource(service_name, environment, service_version))
            provider.add_span_processor(processor)
            trace.set_tracer_provider(provider)
        _configured = (provider, exporter)
        log.info("llmledger exports spans to %s", url)
        return provider


def collector_target() -> tuple[str, dict[str, str]]:
    """The collector's base URL and the headers our exports send it (`configure()`'s, else the settings')."""
    with _lock:
        if _configured is not None:
            exporter = _configured[1]
            return exporter.endpoint.removesuffix("/v1/traces"), exporter.headers
    headers = parse_headers(config.resolve("otlp_headers"))
    token = config.resolve("ingest_token")
    if token:
        headers["Authorization"] = f"Bearer {token}"
    traces = config.resolve("traces_endpoint")
    return (traces.removesuffix("/v1/traces") if traces else config.resolve("endpoint").rstrip("/")), headers


def _resource(service_name: str | None, environment: str | None, service_version: str | None) -> Resource:
    attributes: dict[str, Any] = {}
    for key, setting, explicit in (
        (sc.SERVICE_NAME, "service_name", service_name),
        (sc.DEPLOYMENT_ENVIRONMENT_NAME, "environment", environment),
        (sc.SERVICE_VERSION, "service_version", service_version),
    ):
        value = config.resolve(setting, explicit)
        if value:
            attributes[key] = value
    return Resource.create(attributes)


def flush(timeout: float = 30.0) -> bool:
    """Emit every finished call's span now and, after `configure()`, export them and try once to send what waits
    in the spool; True when all of it reached the collector in time (False while it is down)."""
    done = finisher.flush(timeout)
    if _configured is not None:
        done = _configured[0].force_flush(int(timeout * 1000)) and done
    return done


def spool_status() -> SpoolStatus | None:
    """What waits in the spool folder and what this process's exporter spooled, sent and dropped;
    None before `configure()`."""
    return _configured[1].status() if _configured is not None else None
