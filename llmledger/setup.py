"""`configure()`: export spans to the llmledger collector, for apps without their own OpenTelemetry set-up."""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from llmledger import config
from llmledger import semconv as sc
from llmledger.context import use_spool_dir
from llmledger.finisher import finisher

log = logging.getLogger("llmledger")

_lock = threading.Lock()
_configured: tuple[TracerProvider, BatchSpanProcessor] | None = None


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

    Keyword arguments win over environment variables (`LLMLEDGER_ENDPOINT`, the standard `OTEL_*`,
    `LLMLEDGER_INGEST_TOKEN`). An app that already has an SDK tracer provider keeps it, with our
    exporter added; otherwise a new provider becomes the global one. Calling it again changes nothing.
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
        processor = BatchSpanProcessor(
            OTLPSpanExporter(endpoint=url, headers=export_headers),
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
        _configured = (provider, processor)
        log.info("llmledger exports spans to %s", url)
        return provider


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
    """Emit every finished call's span now and, after `configure()`, export them; True when done in time."""
    done = finisher.flush(timeout)
    if _configured is not None:
        done = _configured[0].force_flush(int(timeout * 1000)) and done
    return done
