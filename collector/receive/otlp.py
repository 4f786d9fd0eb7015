"""Decoding OTLP/HTTP request bodies: protobuf or JSON, plain or gzip, with a size limit.

Pure functions: bytes in, a protobuf message (or an `OtlpError` with its HTTP status) out.
"""

from __future__ import annotations

import base64
import json
import re
import zlib
from typing import Any, TypeVar

from google.protobuf import json_format
from google.protobuf.message import DecodeError, Message

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
_ID_FIELDS = frozenset({"traceId", "spanId", "parentSpanId", "trace_id", "span_id", "parent_span_id"})
_MAX_MESSAGE = 500
_PARSE_STEP = re.compile(r"Failed to parse (\S+) field: ")

M = TypeVar("M", bound=Message)


class OtlpError(Exception):
    """A request the collector refuses, with the HTTP status and a message that says why."""

    def __init__(self, status: int, message: str) -> None:
        if len(message) > _MAX_MESSAGE:  # a decoder's reason can quote a whole value of the body
            message = f"{message[:300]} [... {len(message) - 450} characters left out ...] {message[-150:]}"
        super().__init__(message)
        self.status = status
        self.message = message

    def __reduce__(self) -> tuple[type[OtlpError], tuple[int, str]]:
        # Raised in an ingest worker process (collector/receive/pool.py), it is pickled back to the receiver.
        return OtlpError, (self.status, self.message)


def media_type(content_type: str | None) -> str:
    """`application/json; charset=utf-8` → `application/json`; 415 for anything OTLP doesn't define."""
    kind = (content_type or "").split(";", 1)[0].strip().lower()
    if kind not in (PROTOBUF, JSON):
        raise OtlpError(415, f"unsupported content type {content_type!r}: send {PROTOBUF} or {JSON}")
    return kind


def decompress(body: bytes, content_encoding: str | None, max_bytes: int) -> bytes:
    """The body as sent, gunzipped if so encoded, never more than `max_bytes` (gzip bombs included)."""
    encoding = (content_encoding or "identity").strip().lower()
    if encoding == "identity":
        return body
    if encoding != "gzip":
        raise OtlpError(415, f"unsupported content encoding {content_encoding!r}: send gzip or none")
    parts: list[bytes] = []
    size = 0
    remaining = body
    while True:  # a gzip body may hold several members, one after another
        inflater = zlib.decompressobj(wbits=31)
        try:
            part = inflater.decompress(remaining, max_bytes + 1 - size)
        except zlib.error as exc:
            raise OtlpError(400, f"body is not valid gzip: {exc}") from None
        size += len(part)
        if size > max_bytes:
            raise OtlpError(413, f"decompressed body is larger than the limit of {max_bytes} bytes")
        if not inflater.eof:
            raise OtlpError(400, "body is not valid gzip: the stream is truncated")
        parts.append(part)
        remaining = inflater.unused_data
        if not remaining:
            return b"".join(parts)


def parse(message: M, data: bytes, kind: str) -> M:
    """Fill `message` from a protobuf or OTLP/JSON body; 400 with the decoder's reason if it can't be read."""
    if kind == PROTOBUF:
        try:
            message.ParseFromString(data)
        except (DecodeError, ValueError) as exc:
            raise OtlpError(400, f"body is not a valid OTLP protobuf message: {exc}") from None
        return message
    try:
        document = json.loads(data)
    except (UnicodeDecodeError, ValueError) as exc:
        raise OtlpError(400, f"body is not valid JSON: {exc}") from None
    except RecursionError:
        raise OtlpError(400, "body is not valid OTLP/JSON: nested too deeply") from None
    if not isinstance(document, dict):
        raise OtlpError(400, "body is not an OTLP/JSON object")
    try:
        json_format.ParseDict(_hex_ids_to_base64(document), message, ignore_unknown_fields=True)
    except (json_format.ParseError, ValueError, TypeError) as exc:
        raise OtlpError(400, f"body is not valid OTLP/JSON: {_json_reason(exc)}") from None
    except RecursionError:
        raise OtlpError(400, "body is not valid OTLP/JSON: nested too deeply") from None
    return message


def serialize(message: Message, kind: str) -> bytes:
    """A response in the request's encoding."""
    if kind == PROTOBUF:
        return message.SerializeToString()
    return json.dumps(json_format.MessageToDict(message)).encode()


def _json_reason(exc: Exception) -> str:
    """The innermost reason and a short field path: json_format wraps its reason in one "Failed to parse X field: "
    (and one trailing ".") per level, 3 KB of preamble for a value nested 100 deep."""
    text = str(exc)
    path = _PARSE_STEP.findall(text)
    reason = _PARSE_STEP.sub("", text).rstrip(".") or text
    if not path:
        return reason
    if len(path) > 8:
        path = [*path[:4], "(...)", *path[-3:]]
    return f"{reason} (in {'.'.join(path)})"


def _hex_ids_to_base64(value: Any) -> Any:
    # OTLP/JSON writes trace and span ids as hex; protobuf's JSON mapping expects bytes as base64.
    if isinstance(value, dict):
        converted = {}
        for key, item in value.items():
            if key in _ID_FIELDS and isinstance(item, str):
                try:
                    item = base64.b64encode(bytes.fromhex(item)).decode()
                except ValueError:
                    shown = item if len(item) <= 64 else f"{item[:64]}... ({len(item)} characters)"
                    raise OtlpError(400, f"{key} {shown!r} is not a hex string") from None
            else:
                item = _hex_ids_to_base64(item)
            converted[key] = item
        return converted
    if isinstance(value, list):
        return [_hex_ids_to_base64(item) for item in value]
    return value
