"""Fuzzing the OTLP/HTTP receiver: any body gets a 4xx that says what is wrong, or exactly its valid rows.

Two layers. The decoder (content type, gzip, size limit, protobuf and OTLP/JSON) as pure functions, on random,
truncated, bit-flipped, mutated, deeply nested and oversized bodies: a request or `OtlpError` (which the API turns
into its 4xx), never another exception. Then one real collector (a few dozen bodies per test): never a 5xx, a
refused body adds no row, an accepted one adds exactly the rows of its valid LLM spans, a re-sent one adds none.
"""

from __future__ import annotations

import base64
import copy
import gzip
import itertools
import json
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx2
import pytest
from google.protobuf import json_format
from google.rpc.status_pb2 import Status as RpcStatus
from hypothesis import assume, event, example, given
from hypothesis import strategies as st
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from collector.receive import otlp
from llmledger import semconv as sc
from tests.collector_harness import RunningCollector
from tests.otlp_spans import BASE_NS, chat_attributes

from .test_fuzz_normalize import (
    HUGE_TEXT,
    JSON_VALUES,
    assert_rejection_message,
    assert_storable,
    fuzz_settings,
    ingest,
    key_value_list,
    requests,
    span_count,
)

LIMIT = 256 * 1024  # the collector's --max-body-bytes here: small, so oversized bodies and gzip bombs are cheap
PROTOBUF = otlp.PROTOBUF
JSON = otlp.JSON


def decode(body: bytes, content_type: str | None, content_encoding: str | None) -> ExportTraceServiceRequest:
    """What /v1/traces does with a body before ingest, in its order (collector.receive.http reads, then otlp.parse)."""
    kind = otlp.media_type(content_type)
    if len(body) > LIMIT:
        raise otlp.OtlpError(413, f"body is larger than the limit of {LIMIT} bytes")
    return otlp.parse(ExportTraceServiceRequest(), otlp.decompress(body, content_encoding, LIMIT), kind)


# --- bodies --------------------------------------------------------------------------------------------------------


def make_span(number: int, attributes: dict[str, Any], **fields: Any) -> Span:
    """A well-formed span whose ids come from `number`, so that every span sent in this module is a new key."""
    values: dict[str, Any] = {
        "trace_id": (0xFEED << 64 | number).to_bytes(16, "big"),
        "span_id": number.to_bytes(8, "big"),
        "start_time_unix_nano": BASE_NS + number,
        "end_time_unix_nano": BASE_NS + number + 250_000_000,
        **fields,
    }
    return Span(name="chat", kind=Span.SPAN_KIND_CLIENT, attributes=key_value_list(list(attributes.items())), **values)


def request_of(spans: list[Span], service: str) -> ExportTraceServiceRequest:
    request = ExportTraceServiceRequest()
    resource_spans = request.resource_spans.add()
    resource_spans.resource.attributes.extend(key_value_list([(sc.SERVICE_NAME, service)]))
    resource_spans.scope_spans.add().spans.extend(spans)
    return request


def otlp_json(request: ExportTraceServiceRequest) -> dict[str, Any]:
    """OTLP/JSON as exporters write it: protobuf's JSON mapping, with trace and span ids in hex."""

    def hex_ids(value: Any) -> Any:
        if isinstance(value, dict):
            return {
                key: base64.b64decode(item).hex() if key in ("traceId", "spanId", "parentSpanId") else hex_ids(item)
                for key, item in value.items()
            }
        if isinstance(value, list):
            return [hex_ids(item) for item in value]
        return value

    return hex_ids(json_format.MessageToDict(request))


VALID = request_of(
    [
        make_span(1, chat_attributes()),
        make_span(2, chat_attributes(**{sc.REQUEST_ID: "req_2", sc.GEN_AI_USAGE_COST_AMOUNT: 0.00012})),
    ],
    service="fuzz-base",
)
VALID_PROTOBUF = VALID.SerializeToString()
VALID_DOCUMENT = otlp_json(VALID)
VALID_JSON = json.dumps(VALID_DOCUMENT).encode()


def _varint(number: int) -> bytes:
    out = bytearray()
    while True:
        low, number = number & 0x7F, number >> 7
        out.append(low | (0x80 if number else 0))
        if not number:
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def nested_protobuf(depth: int) -> bytes:
    """A request whose one attribute is a key-value list nested `depth` deep (the wire allows any depth)."""
    value = b""
    for _ in range(depth):  # AnyValue.kvlist_value(6) → KeyValueList.values(1) → KeyValue key(1), value(2)
        value = _field(6, _field(1, _field(1, b"k") + _field(2, value)))
    span = _field(1, b"\x01" * 16) + _field(2, b"\x01" * 8) + _field(9, _field(1, b"k") + _field(2, value))
    return _field(1, _field(2, _field(2, span)))  # request.resource_spans → scope_spans → spans


def nested_json(depth: int) -> bytes:
    """The OTLP/JSON counterpart of `nested_protobuf` (built without quadratic string concatenation)."""
    value = '{"kvlistValue": {"values": [{"key": "k", "value": ' * depth + "{}" + "}]}}" * depth
    span = '{"traceId": "' + "01" * 16 + '", "spanId": "' + "01" * 8 + '", "attributes": [{"key": "k", "value": '
    return ('{"resourceSpans": [{"scopeSpans": [{"spans": [' + span + value + "}]}]}]}]}").encode()


def apply_flips(body: bytes, flips: list[tuple[int, int]]) -> bytes:
    data = bytearray(body)
    for index, byte in flips:
        data[index % len(data)] = byte
    return bytes(data)


WRONG_JSON = st.one_of(
    JSON_VALUES,
    st.sampled_from(["", "zz", "0" * 33, "NaN", "-1", -1, 2**64, 10**400, math.inf, math.nan, [], {}, None, True]),
    HUGE_TEXT,
)


@st.composite
def mutated_json(draw: st.DrawFn) -> bytes:
    """The valid OTLP/JSON document with one to three values replaced by values of the wrong type or size."""
    document = copy.deepcopy(VALID_DOCUMENT)
    for _ in range(draw(st.integers(1, 3))):
        parent: Any = None
        key: Any = None
        node: Any = document
        while isinstance(node, (dict, list)) and node and (parent is None or draw(st.integers(0, 4)) > 0):
            key = draw(st.sampled_from(sorted(node) if isinstance(node, dict) else range(len(node))))
            parent, node = node, node[key]
        if parent is not None:
            parent[key] = draw(WRONG_JSON)
    return json.dumps(document).encode()


PROTOBUF_BODIES = st.one_of(
    st.binary(max_size=512),
    st.integers(0, len(VALID_PROTOBUF)).map(lambda size: VALID_PROTOBUF[:size]),
    st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), min_size=1, max_size=6).map(
        lambda flips: apply_flips(VALID_PROTOBUF, flips)
    ),
    st.integers(1, 3_000).map(nested_protobuf),
    requests().map(lambda request: request.SerializeToString()),
    st.just(VALID_PROTOBUF),
)
JSON_BODIES = st.one_of(
    st.binary(max_size=256),
    JSON_VALUES.map(lambda value: json.dumps(value).encode()),
    mutated_json(),
    st.integers(1, 4_000).map(nested_json),
    st.integers(1, 200_000).map(lambda depth: b"[" * depth),
    requests().map(lambda request: json.dumps(otlp_json(request)).encode()),
    st.just(VALID_JSON),
)
CONTENT_TYPES = {
    PROTOBUF: st.sampled_from([PROTOBUF, PROTOBUF, "Application/X-Protobuf", f"{PROTOBUF}; charset=binary"]),
    JSON: st.sampled_from([JSON, JSON, "application/json; charset=utf-8", "APPLICATION/JSON"]),  # h11 sends no padding
}
OTHER_CONTENT_TYPES = st.one_of(
    st.sampled_from([None, "", "text/plain", "application/grpc", "application/protobuf", "application/jsonx"]),
    st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=30),
)
GZIP_BOMB = gzip.compress(bytes(LIMIT + 1))


@st.composite
def bodies(draw: st.DrawFn) -> tuple[bytes, str | None, str | None]:
    """(body, content type, content encoding) as a sender might send them, right or wrong."""
    kind = draw(st.sampled_from([PROTOBUF, JSON]))
    body = draw(PROTOBUF_BODIES if kind == PROTOBUF else JSON_BODIES)
    # Mostly the right content type and a known encoding, so that most bodies get as far as the decoder.
    declared = draw(st.sampled_from(["right"] * 6 + ["other kind", "unsupported"]))
    if declared == "right":
        content_type = draw(CONTENT_TYPES[kind])
    elif declared == "other kind":
        content_type = draw(CONTENT_TYPES[JSON if kind == PROTOBUF else PROTOBUF])
    else:
        content_type = draw(OTHER_CONTENT_TYPES)
    encoding = draw(
        st.sampled_from([None] * 3 + ["gzip"] * 3 + ["identity", "GZIP", "br", "deflate", "gzip, identity"])
    )
    if encoding is not None and encoding.lower() == "gzip":
        compressed = gzip.compress(body, compresslevel=1)
        body = draw(
            st.sampled_from(
                [
                    compressed,
                    compressed[: len(compressed) // 2],  # truncated
                    compressed + b"junk",  # trailing garbage
                    compressed + compressed,  # two members: the same spans twice
                    body,  # declared gzip, sent plain
                    GZIP_BOMB,
                ]
            )
        )
    return body, content_type, encoding


# --- the decoder, pure -----------------------------------------------------------------------------------------------


@fuzz_settings(400)
@given(case=bodies())
@example(case=(b"[" * 200_000, JSON, None))
@example(case=(nested_json(5_000), JSON, None))
@example(case=(nested_json(32), JSON, None))  # the reason used to come after 2 KB of "Failed to parse ... field: "
@example(case=(nested_protobuf(3_000), PROTOBUF, None))
@example(case=(GZIP_BOMB, PROTOBUF, "gzip"))
@example(
    case=(b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "' + b"z" * 100_000 + b'"}]}]}]}', JSON, None)
)
def test_any_body_decodes_to_a_request_or_a_clear_4xx(case: tuple[bytes, str | None, str | None]) -> None:
    body, content_type, encoding = case
    refusal = None
    try:
        request = decode(body, content_type, encoding)
    except otlp.OtlpError as error:
        refusal = error
    if refusal is not None:
        event(f"refused with {refusal.status}")
        assert refusal.status in (400, 413, 415)
        assert refusal.message
        assert len(refusal.message) <= 500, refusal.message[:200]  # says what is wrong, without echoing the body
        return
    assert isinstance(request, ExportTraceServiceRequest)
    # Whatever decoded also normalizes: storable rows and named rejections, every span accounted for.
    rows, rejected, non_llm = ingest(request)
    event("decoded, with rows" if rows else "decoded, no rows")
    assert len(rows) + len(rejected) + non_llm == span_count(request)
    for row in rows:
        assert_storable(row)
    for message in rejected:
        assert_rejection_message(message)


@fuzz_settings(200)
@given(
    size=st.integers(0, LIMIT + 2_000) | st.sampled_from([LIMIT - 1, LIMIT, LIMIT + 1]),
    pattern=st.binary(min_size=1, max_size=64),
    members=st.integers(1, 3),
    cut=st.integers(1, 18),  # a gzip member is at least 20 bytes: cutting up to 18 always leaves it truncated
)
def test_gzip_round_trips_within_the_limit_and_refuses_truncation(
    size: int, pattern: bytes, members: int, cut: int
) -> None:
    data = (pattern * (size // len(pattern) + 1))[:size]
    # The small members first and the large one last, so that `cut` lands inside a member, never between two.
    pieces = [b"x"] * (members - 1) + [data]
    compressed = b"".join(gzip.compress(piece, compresslevel=1) for piece in pieces)
    expected = b"".join(pieces)
    if len(expected) > LIMIT:
        with pytest.raises(otlp.OtlpError, match="larger than the limit") as refused:
            otlp.decompress(compressed, "gzip", LIMIT)
        assert refused.value.status == 413
    else:
        assert otlp.decompress(compressed, "gzip", LIMIT) == expected
    with pytest.raises(otlp.OtlpError) as truncated:
        otlp.decompress(compressed[:-cut], "gzip", LIMIT)
    # Over the limit, whether the size or the truncation is noticed first depends on where the cut falls.
    assert truncated.value.status in ((400, 413) if len(expected) > LIMIT else (400,))


@pytest.mark.parametrize(
    ("content_type", "kind"),
    [
        ("application/json; charset=utf-8", JSON),
        (" Application/JSON ", JSON),
        ("application/x-protobuf", PROTOBUF),
        ("APPLICATION/X-PROTOBUF;foo=bar", PROTOBUF),
    ],
)
def test_content_types_with_parameters_and_any_case_are_understood(content_type: str, kind: str) -> None:
    assert otlp.media_type(content_type) == kind


@fuzz_settings(200)
@given(content_type=st.none() | st.text(max_size=40))
def test_any_other_content_type_is_a_415_that_names_it(content_type: str | None) -> None:
    assume((content_type or "").split(";")[0].strip().lower() not in (JSON, PROTOBUF))
    with pytest.raises(otlp.OtlpError) as refused:
        otlp.media_type(content_type)
    assert refused.value.status == 415
    assert repr(content_type) in refused.value.message
    assert PROTOBUF in refused.value.message
    assert JSON in refused.value.message


def test_a_refusal_says_what_is_wrong_in_a_few_lines() -> None:
    # Found by the property above: json_format's reason for a value nested past its limit was 2 KB of
    # "Failed to parse value field: Failed to parse values field: ..." before "Message too deep", and a
    # malformed double was quoted whole (100 KB here) in the 400's message.
    with pytest.raises(otlp.OtlpError) as deep:
        decode(nested_json(32), JSON, None)
    assert deep.value.message.startswith("body is not valid OTLP/JSON: Message too deep. Max recursion depth is 100")
    assert "(in resourceSpans.scopeSpans.spans.attributes.(...).values.value.values)" in deep.value.message
    assert len(deep.value.message) < 200
    huge_double = {"key": "k", "value": {"doubleValue": "A" * 100_000}}
    body = json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [{"attributes": [huge_double]}]}]}]})
    with pytest.raises(otlp.OtlpError) as quoted:
        decode(body.encode(), JSON, None)
    assert quoted.value.message.startswith("body is not valid OTLP/JSON: Couldn't parse float: AAAA")
    assert "characters left out" in quoted.value.message
    assert len(quoted.value.message) <= 500


def test_a_malformed_id_is_named_without_echoing_all_of_it() -> None:
    body = json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "z" * 100_000}]}]}]}).encode()
    with pytest.raises(otlp.OtlpError) as refused:
        decode(body, JSON, None)
    assert refused.value.status == 400
    assert refused.value.message.startswith("traceId 'zzzz")
    assert "(100000 characters)" in refused.value.message
    assert len(refused.value.message) < 200


# --- one real collector ----------------------------------------------------------------------------------------------


@dataclass
class Ledger:
    """The collector under test and every (trace_id, span_id) it should hold by now."""

    running: RunningCollector
    keys: set[tuple[str, str]] = field(default_factory=set)

    def post(self, body: bytes, content_type: str | None, encoding: str | None) -> httpx2.Response:
        headers = {}
        if content_type is not None:
            headers["content-type"] = content_type
        if encoding is not None:
            headers["content-encoding"] = encoding
        return self.running.http.post("/v1/traces", content=body, headers=headers)

    def stored(self) -> int:
        return self.running.get("/api/v1/summary")["requests"]

    def expect(self, rows: list[dict[str, Any]]) -> None:
        self.keys.update((row["trace_id"], row["span_id"]) for row in rows)
        assert self.stored() == len(self.keys)


@pytest.fixture(scope="module")
def ledger(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ledger]:
    running = RunningCollector(tmp_path_factory.mktemp("fuzz") / "fuzz.duckdb", "--max-body-bytes", str(LIMIT))
    yield Ledger(running)
    running.stop()


def error_message(response: httpx2.Response) -> str:
    """A refusal's message: a google.rpc.Status in the request's encoding, or JSON when that wasn't known yet."""
    if response.headers.get("content-type", "").startswith(PROTOBUF):
        return RpcStatus.FromString(response.content).message
    return response.json()["message"]


def export_response(response: httpx2.Response) -> ExportTraceServiceResponse:
    if response.headers["content-type"].startswith(PROTOBUF):
        return ExportTraceServiceResponse.FromString(response.content)
    return json_format.Parse(response.content, ExportTraceServiceResponse())


@fuzz_settings(120)
@given(case=bodies())
def test_the_collector_answers_any_body_with_a_clear_4xx_or_exactly_its_valid_rows(
    ledger: Ledger, case: tuple[bytes, str | None, str | None]
) -> None:
    body, content_type, encoding = case
    try:
        request: ExportTraceServiceRequest | None = decode(body, content_type, encoding)
        refusal = None
    except otlp.OtlpError as error:
        request, refusal = None, error
    before = ledger.stored()

    response = ledger.post(body, content_type, encoding)
    event(f"HTTP {response.status_code}")

    assert response.status_code < 500, response.text[:500]
    if refusal is not None:
        assert response.status_code == refusal.status, response.text[:500]
        assert error_message(response)
        assert ledger.stored() == before  # nothing of a refused body is kept
        return
    assert request is not None
    assert response.status_code == 200, response.text[:500]
    rows, rejected, _ = ingest(request)
    assert export_response(response).partial_success.rejected_spans == len(rejected)
    ledger.expect(rows)  # exactly its valid rows, and a key stored before is not stored again


# Span variants: kept (odd values that are dropped or converted), rejected alone, or not an LLM call.
TOKENS_IN, TOKENS_OUT = sc.GEN_AI_USAGE_INPUT_TOKENS, sc.GEN_AI_USAGE_OUTPUT_TOKENS
KEPT: dict[str, dict[str, Any]] = {
    "plain": {},
    "tokens as text": {TOKENS_IN: "1200"},
    "tokens NaN": {TOKENS_IN: math.nan},
    "tokens infinite": {TOKENS_OUT: -math.inf},
    "tokens fractional": {TOKENS_OUT: 2.5},
    "tokens true": {TOKENS_IN: True},
    "tokens an array": {TOKENS_IN: [1, 2]},
    "tokens bytes": {TOKENS_OUT: b"\x01"},
    "huge model name": {sc.GEN_AI_REQUEST_MODEL: "m" * 50_000, sc.GEN_AI_RESPONSE_MODEL: None},
    "unicode and NUL": {sc.GEN_AI_REQUEST_MODEL: "模型-🦙", sc.TEAM: "ü\x00x"},
    "no model": {sc.GEN_AI_REQUEST_MODEL: None, sc.GEN_AI_RESPONSE_MODEL: None},
    "model a number": {sc.GEN_AI_REQUEST_MODEL: 4, sc.GEN_AI_RESPONSE_MODEL: 4.5},
    "cost NaN": {sc.GEN_AI_USAGE_COST_AMOUNT: math.nan},
    "cost too large": {sc.GEN_AI_USAGE_COST_AMOUNT: 1e300},
}
REJECTED: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "tokens negative": ({TOKENS_IN: -1}, {}),
    "tokens negative float": ({TOKENS_OUT: -3.0}, {}),
    "tokens too many to price": ({TOKENS_IN: 1e300}, {}),
    "tokens a huge number as text": ({TOKENS_OUT: "9" * 400}, {}),
    "attempts beyond int32": ({sc.ATTEMPTS: 2**40}, {}),
    "time to first chunk overflows": ({sc.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK: 1e308}, {}),
    "max_tokens negative": ({sc.GEN_AI_REQUEST_MAX_TOKENS: -1}, {}),
    "trace id short": ({}, {"trace_id": b"\x01" * 15}),
    "span id zero": ({}, {"span_id": bytes(8)}),
    "parent id short": ({}, {"parent_span_id": b"\x02" * 3}),
    "no start time": ({}, {"start_time_unix_nano": 0}),
}
NOT_A_CALL = {sc.GEN_AI_OPERATION_NAME: "execute_tool"}
_numbers = itertools.count(1_000)


@fuzz_settings(50)
@given(
    variants=st.lists(
        st.sampled_from(sorted(KEPT)) | st.sampled_from(sorted(REJECTED)) | st.just("not a call"),
        min_size=1,
        max_size=8,
    ),
    encoding=st.sampled_from(["protobuf", "json", "gzip"]),
)
def test_a_mixed_request_stores_exactly_its_valid_spans_once(
    ledger: Ledger, variants: list[str], encoding: str
) -> None:
    service = f"mixed-{next(_numbers)}"
    spans, kept = [], {}
    for variant in variants:
        number = next(_numbers)
        request_id = f"{variant}-{number}"
        if variant in KEPT:
            spans.append(make_span(number, chat_attributes(**{sc.REQUEST_ID: request_id, **KEPT[variant]})))
            kept[request_id] = variant
        elif variant in REJECTED:
            attributes, fields = REJECTED[variant]
            spans.append(make_span(number, chat_attributes(**{sc.REQUEST_ID: request_id, **attributes}), **fields))
        else:
            spans.append(make_span(number, chat_attributes(**{sc.REQUEST_ID: request_id, **NOT_A_CALL})))
    request = request_of(spans, service)
    if encoding == "json":
        body, headers = json.dumps(otlp_json(request)).encode(), (JSON, None)
        broken = body[:-1]
    elif encoding == "gzip":
        body, headers = gzip.compress(request.SerializeToString()), (PROTOBUF, "gzip")
        broken = body[:-4]  # the gzip trailer is missing
    else:
        body, headers = request.SerializeToString(), (PROTOBUF, None)
        broken = body + b"\xff"  # a field tag cut short
    rejected_count = sum(variant in REJECTED for variant in variants)
    before = ledger.stored()

    refused = ledger.post(broken, *headers)
    assert refused.status_code == 400, refused.text[:500]
    assert error_message(refused)
    assert ledger.stored() == before  # the valid spans of a refused body are not kept either

    for attempt in ("first", "re-sent"):
        response = ledger.post(body, *headers)
        assert response.status_code == 200, (attempt, response.text[:500])
        answer = export_response(response)
        assert answer.partial_success.rejected_spans == rejected_count, attempt
        assert ledger.stored() == before + len(kept), attempt  # the re-sent copy adds nothing
    calls = ledger.running.get("/api/v1/calls", service=service, limit=1000)["calls"]
    assert {call["request_id"] for call in calls} == set(kept)
    for call in calls:
        for column in ("input_tokens", "cached_input_tokens", "output_tokens", "reasoning_tokens"):
            assert call[column] is None or (type(call[column]) is int and call[column] >= 0), (column, call)
        variant = kept[call["request_id"]]
        if variant == "tokens as text":
            assert call["input_tokens"] == 1200
        elif variant in ("tokens NaN", "tokens true", "tokens an array"):
            assert call["input_tokens"] is None
        elif variant in ("tokens infinite", "tokens fractional", "tokens bytes"):
            assert call["output_tokens"] is None
        elif variant == "cost too large":
            assert call["span_cost_usd"] is None
    ledger.keys.update((call["trace_id"], call["span_id"]) for call in calls)
    assert ledger.stored() == len(ledger.keys)


def test_after_the_fuzzing_the_collector_is_healthy_and_holds_nothing_out_of_range(ledger: Ledger) -> None:
    assert ledger.running.http.get("/healthz").status_code == 200
    reader = ledger.running.collector.store.reader()
    try:
        (count, bad_tokens, bad_doubles) = reader.execute(
            """
            SELECT count(*),
                   count(*) FILTER (WHERE least(input_tokens, cached_input_tokens, cache_write_tokens, output_tokens,
                                             reasoning_tokens, max_tokens) < 0),
                   count(*) FILTER (WHERE NOT (isfinite(coalesce(duration_ms, 0)) AND isfinite(coalesce(ttft_ms, 0))
                                               AND isfinite(coalesce(temperature, 0))
                                               AND isfinite(coalesce(client_timeout_s, 0))))
            FROM llm_calls
            """
        ).fetchone()
    finally:
        reader.close()
    assert count == len(ledger.keys)
    assert (bad_tokens, bad_doubles) == (0, 0)
    for path, params in [
        ("/api/v1/summary", {}),
        ("/api/v1/calls", {"limit": 1000}),
        ("/api/v1/breakdown", {"group_by": "model"}),
        ("/api/v1/timeseries", {"metric": "requests", "bucket": "1d"}),
        ("/api/v1/export.csv", {}),
    ]:
        assert ledger.running.http.get(path, params=params).status_code == 200, path
