"""The sample data's file format (`*.otlp.gz`, see `sample_data/__init__.py`): length-delimited OTLP export
requests in a gzip stream, written by the generator and read by `llmledger load` and the demo's bill."""

from __future__ import annotations

import gzip
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span

_LENGTH = struct.Struct(">I")
_GZIP_MAGIC = b"\x1f\x8b"


class OtlpFileError(Exception):
    """A file that cannot be read, or is not in this format."""


@dataclass(frozen=True)
class Written:
    spans: int
    messages: int
    bytes: int


def write(requests: Iterator[ExportTraceServiceRequest], out: Path) -> Written:
    """Write length-delimited messages into a gzip file with no time stamp (the same input gives the same bytes)."""
    spans = messages = 0
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=9, mtime=0) as gz:
        for request in requests:
            body = request.SerializeToString(deterministic=True)
            gz.write(_LENGTH.pack(len(body)))
            gz.write(body)
            messages += 1
            spans += sum(len(scope.spans) for resource in request.resource_spans for scope in resource.scope_spans)
    return Written(spans=spans, messages=messages, bytes=out.stat().st_size)


def read_requests(path: str | Path) -> Iterator[ExportTraceServiceRequest]:
    """The export requests of a length-delimited OTLP file, in order (gzip-compressed or not)."""
    with _open(Path(path)) as stream:
        index = 0
        while header := stream.read(_LENGTH.size):
            if len(header) < _LENGTH.size:
                raise OtlpFileError(f"{path}: truncated length prefix after message {index}")
            (size,) = _LENGTH.unpack(header)
            body = stream.read(size)
            if len(body) < size:
                raise OtlpFileError(f"{path}: message {index} is truncated ({len(body)} of {size} bytes)")
            request = ExportTraceServiceRequest()
            try:
                request.ParseFromString(body)
            except Exception as exc:  # noqa: BLE001 - protobuf's DecodeError and friends
                raise OtlpFileError(f"{path}: message {index} is not an ExportTraceServiceRequest ({exc})") from None
            yield request
            index += 1


def _open(path: Path) -> IO[bytes]:
    try:
        with path.open("rb") as probe:
            compressed = probe.read(2) == _GZIP_MAGIC
        return gzip.open(path, "rb") if compressed else path.open("rb")
    except OSError as exc:
        raise OtlpFileError(f"cannot read {path}: {exc}") from None


def latest_end_ns(path: str | Path) -> int | None:
    """The latest span end (or start, for a span without an end) in the file, in Unix nanoseconds."""
    latest: int | None = None
    for request in read_requests(path):
        for span in spans(request):
            end = max(span.end_time_unix_nano, span.start_time_unix_nano)
            if latest is None or end > latest:
                latest = end
    return latest


def spans(request: ExportTraceServiceRequest) -> Iterator[Span]:
    """Every span of one export request."""
    for resource_spans in request.resource_spans:
        for scope_spans in resource_spans.scope_spans:
            yield from scope_spans.spans


def attributes(span: Span) -> dict[str, Any]:
    """A span's attributes as Python values (arrays as lists)."""
    return {kv.key: _value(kv.value) for kv in span.attributes}


def _value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return [_value(item) for item in value.array_value.values]
    return getattr(value, kind) if kind is not None else None
