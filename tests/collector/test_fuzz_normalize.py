"""Property tests of span → row: any attribute of any type becomes a storable row or a named rejection.

What goes through here is what `/v1/traces` runs after decoding (`Ingest.submit`: normalize, price, validate),
with a writer that only keeps the rows, so thousands of odd spans run in seconds. The rows are then inserted
into a real (in-memory) database with the production schema. Helpers here are shared with test_fuzz_otlp.py.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterator
from concurrent.futures import Future
from datetime import datetime
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status

from collector.ingest import dialects
from collector.ingest.pipeline import Ingest
from collector.ingest.writer import WriteResult
from collector.metrics import Metrics
from collector.money.price_book import PriceBook
from collector.store.file import Store
from collector.store.schema import LLM_CALLS_COLUMNS
from llmledger import semconv as sc
from llmledger.testing.otlp_values import any_value
from tests.otlp_spans import BASE_NS, chat_attributes

# Reproducible in CI (same examples every run, nothing written to .hypothesis/). For a deeper local hunt:
# LLMLEDGER_FUZZ_EXAMPLES=20000 pytest tests/collector/test_fuzz_normalize.py (random examples, many more of them).
_DEEP_RUN = os.environ.get("LLMLEDGER_FUZZ_EXAMPLES")
_SLOW_OK = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example]


def fuzz_settings(max_examples: int) -> settings:
    return settings(
        max_examples=int(_DEEP_RUN) if _DEEP_RUN else max_examples,
        derandomize=not _DEEP_RUN,
        database=None,
        deadline=None,
        suppress_health_check=_SLOW_OK,
    )


# --- shared helpers: the ingest pipeline without a database, and what a storable row is --------------------------


class CapturingWriter:
    """Stands in for BatchWriter: keeps the rows it is handed and acknowledges them at once."""

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []

    def submit(self, calls: pa.Table) -> Future[WriteResult]:
        self.rows.extend(calls.to_pylist())
        future: Future[WriteResult] = Future()
        future.set_result(WriteResult(calls.num_rows, 0))
        return future


def ingest(request: ExportTraceServiceRequest) -> tuple[list[dict[str, Any]], list[str], int]:
    """What /v1/traces would write for `request`: (rows, rejection messages, non-LLM spans dropped)."""
    writer = CapturingWriter()
    metrics = Metrics()
    prepared = Ingest(writer, metrics, PriceBook()).submit(request)  # type: ignore[arg-type]
    return writer.rows, prepared.rejected, int(metrics.value("llmledger_spans_non_llm_total"))


def span_count(request: ExportTraceServiceRequest) -> int:
    return sum(len(scope.spans) for resource in request.resource_spans for scope in resource.scope_spans)


_INT32 = (-(2**31), 2**31 - 1)
_TOKEN_COLUMNS = (
    "input_tokens",
    "cached_input_tokens",
    "cache_write_tokens",
    "output_tokens",
    "reasoning_tokens",
)


def assert_storable(row: dict[str, Any]) -> None:
    """Every value has its column's Python type and fits it (an independent restatement of the schema)."""
    assert list(row) == [name for name, _ in LLM_CALLS_COLUMNS]
    for name, declared in LLM_CALLS_COLUMNS:
        value = row[name]
        kind = declared.removesuffix(" NOT NULL")
        if value is None:
            assert kind == declared, f"{name} is NOT NULL"
            continue
        if kind == "VARCHAR":
            assert type(value) is str, name
            value.encode("utf-8")  # no lone surrogates: DuckDB and Arrow would refuse the whole batch
        elif kind == "INTEGER":
            assert type(value) is int, name
            assert _INT32[0] <= value <= _INT32[1], (name, value)
        elif kind == "BIGINT":
            assert type(value) is int, name
            assert 0 <= value < 2**53, (name, value)  # tokens, rate limits, max_tokens: never negative
        elif kind == "DOUBLE":
            assert type(value) is float, name
            assert math.isfinite(value), (name, value)
        elif kind == "BOOLEAN":
            assert type(value) is bool, name
        elif kind == "DECIMAL(18,9)":
            assert type(value) is Decimal, name
            assert value.is_finite(), (name, value)
            assert abs(value) < 10**9, (name, value)
            assert value.as_tuple().exponent >= -9, (name, value)
        elif kind == "TIMESTAMPTZ":
            assert type(value) is datetime, name
            assert value.tzinfo is not None, name
        else:
            raise AssertionError(f"no check for column type {declared}")
    assert row["status"] in ("ok", "error")
    assert row["source_dialect"] in dialects.DIALECT_NAMES
    assert len(row["trace_id"]) == 32
    assert len(row["span_id"]) == 16
    assert row["parent_span_id"] is None or len(row["parent_span_id"]) == 16
    if row["tags"] is not None:
        tags = json.loads(row["tags"])
        assert type(tags) is dict
        assert all(type(value) is str for value in tags.values())


def assert_rejection_message(message: str) -> None:
    assert type(message) is str
    assert message.startswith("span "), message
    assert ": " in message, message


# --- strategies ----------------------------------------------------------------------------------------------------

INT64 = st.integers(-(2**63), 2**63 - 1)
FLOATS = st.floats() | st.sampled_from([math.nan, math.inf, -math.inf, -0.0, -1.0, 0.5, 1e300, 1e308, 2.0**53])
NUMBERISH_TEXT = st.sampled_from(
    [
        *("0", "12", "-5", "1.5", " 7 ", "1_000", "0x10", "1e400", "nan", "-inf", "9" * 400, "9" * 5000, "٣"),
        *("true", "FALSE", "", ".", "openai.", "<class 'openai.RateLimitError'>", "<class ''>"),
    ]
)
HUGE_TEXT = st.builds(
    lambda piece, times: piece * times, st.sampled_from(["x", "é", "🦙", "\x00", "[", "9"]), st.integers(1_000, 60_000)
)
TEXT = st.text(max_size=40) | NUMBERISH_TEXT | HUGE_TEXT
SCALARS = st.one_of(st.booleans(), INT64, FLOATS, TEXT, st.binary(max_size=16))
# None stands for an AnyValue with no value set (the wire allows it).
VALUES = st.one_of(
    st.none(),
    SCALARS,
    st.lists(SCALARS | st.lists(SCALARS, max_size=2), max_size=4),
    st.dictionaries(st.text(max_size=8), SCALARS, max_size=3),
)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10) | st.just(10**400),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3),
    max_leaves=8,
)
INVOCATION_PARAMETERS = st.one_of(
    st.dictionaries(
        st.sampled_from(["model", "max_tokens", "max_completion_tokens", "max_output_tokens", "temperature", "stream"])
        | st.text(max_size=5),
        JSON_VALUES,
        max_size=4,
    ).map(json.dumps),
    st.builds(lambda depth: "[" * depth + "]" * depth, st.integers(1, 50_000)),
    st.just('{"model": "gpt-4o", "temperature": 1' + "0" * 400 + "}"),
    TEXT,
)
SPECIAL_KEYS = [
    sc.TAG_PREFIX + "tenant",
    sc.TAG_PREFIX,
    "llmledger.not_a_field",
    "gen_ai.completion.0.finish_reason",
    "gen_ai.completion.x",
]
KEYS = st.sampled_from(sorted(dialects.FIELDS)) | st.sampled_from(SPECIAL_KEYS) | st.text(max_size=20)
ATTRIBUTE = st.one_of(
    st.tuples(KEYS, VALUES),
    st.tuples(st.just(sc.LLM_INVOCATION_PARAMETERS), INVOCATION_PARAMETERS),
)
# What makes a span an LLM call in each dialect (or not), so that most fuzzed spans get as far as a row.
MARKERS = st.sampled_from(
    [
        [],
        list(chat_attributes().items()),
        [(sc.GEN_AI_OPERATION_NAME, "chat")],
        [(sc.GEN_AI_PROVIDER_NAME, "openai"), (sc.GEN_AI_REQUEST_MODEL, "gpt-4o-mini")],
        [(sc.OPENINFERENCE_SPAN_KIND, "LLM"), (sc.LLM_MODEL_NAME, "gpt-4o")],
        [(sc.LLM_REQUEST_TYPE, "chat"), (sc.GEN_AI_SYSTEM, "openai")],
        [(sc.GEN_AI_OPERATION_NAME, "execute_tool")],
    ]
)


# Most spans get well-formed ids and a start time (or they would get no further than the id check); one in a few
# gets exactly one flaw.
FLAWS: list[dict[str, Any]] = [
    {"trace_id": b""},
    {"trace_id": bytes(16)},
    {"trace_id": b"\x01" * 15},
    {"trace_id": b"\x01" * 17},
    {"span_id": b""},
    {"span_id": bytes(8)},
    {"span_id": b"\x01" * 7},
    {"parent_span_id": b"\x02" * 3},
    {"start_time_unix_nano": 0},
]
FLAW = st.sampled_from([{}] * 24 + FLAWS)
START_NS = st.sampled_from([BASE_NS, 1, 2**64 - 1]) | st.integers(1, 2**64 - 1)
END_NS = st.one_of(st.just(BASE_NS + 250_000_000), st.integers(0, 2**64 - 1))
STATUS_CODES = st.sampled_from([Status.STATUS_CODE_UNSET, Status.STATUS_CODE_OK, Status.STATUS_CODE_ERROR, 7])


def attribute_value(value: Any) -> AnyValue:
    return AnyValue() if value is None else any_value(value)


def key_value_list(attributes: list[tuple[str, Any]]) -> list[KeyValue]:
    # A list, not a dict: the wire allows a key twice and the normalizer must cope with that too.
    return [KeyValue(key=key, value=attribute_value(value)) for key, value in attributes]


def non_zero(raw: bytes) -> bytes:
    return raw if any(raw) else b"\x01" + raw[1:]  # an all-zero id is one of the FLAWS, not the usual case


@st.composite
def spans(draw: st.DrawFn) -> Span:
    attributes = draw(MARKERS) + draw(st.lists(ATTRIBUTE, max_size=10))
    if draw(st.booleans()):
        attributes = draw(st.permutations(attributes))
    fields: dict[str, Any] = {
        "trace_id": draw(st.binary(min_size=16, max_size=16).map(non_zero)),
        "span_id": draw(st.binary(min_size=8, max_size=8).map(non_zero)),
        "parent_span_id": draw(st.sampled_from([b"", b"\x02" * 8])),
        "start_time_unix_nano": draw(START_NS),
        **draw(FLAW),
    }
    return Span(
        name="fuzz",
        kind=Span.SPAN_KIND_CLIENT,
        end_time_unix_nano=draw(END_NS),
        attributes=key_value_list(attributes),
        status=Status(code=draw(STATUS_CODES)),
        **fields,
    )


RESOURCE_ATTRIBUTES = st.lists(st.tuples(st.sampled_from(sorted(dialects.RESOURCE_FIELDS)) | KEYS, VALUES), max_size=4)


@st.composite
def requests(draw: st.DrawFn) -> ExportTraceServiceRequest:
    request = ExportTraceServiceRequest()
    for _ in range(draw(st.integers(1, 2))):
        resource_spans: ResourceSpans = request.resource_spans.add()
        resource_spans.resource.attributes.extend(key_value_list(draw(RESOURCE_ATTRIBUTES)))
        for _ in range(draw(st.integers(1, 2))):
            scope: ScopeSpans = resource_spans.scope_spans.add()
            scope.spans.extend(draw(st.lists(spans(), max_size=4)))
    return request


def one_span_request(attributes: list[tuple[str, Any]], *, span_id: bytes = b"\x01" * 8) -> ExportTraceServiceRequest:
    request = ExportTraceServiceRequest()
    scope = request.resource_spans.add().scope_spans.add()
    scope.spans.append(
        Span(
            trace_id=b"\x0a" * 16,
            span_id=span_id,
            name="chat",
            start_time_unix_nano=BASE_NS,
            end_time_unix_nano=BASE_NS + 250_000_000,
            attributes=key_value_list(attributes),
        )
    )
    return request


# --- properties ----------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def store() -> Iterator[Store]:
    database = Store(":memory:")
    yield database
    database.close()


@fuzz_settings(200)
@given(request=requests())
def test_any_request_becomes_storable_rows_or_named_rejections(
    request: ExportTraceServiceRequest, store: Store
) -> None:
    rows, rejected, non_llm = ingest(request)
    event("some rows" if rows else "no rows")
    event("some rejected" if rejected else "none rejected")

    assert len(rows) + len(rejected) + non_llm == span_count(request)  # every span is accounted for
    for message in rejected:
        assert_rejection_message(message)
    for row in rows:
        assert_storable(row)
    store.insert(rows)  # the real schema takes every row that passed (a failure here would fail a whole commit)


TOKEN_KEYS = {
    sc.GEN_AI_USAGE_INPUT_TOKENS: "input_tokens",
    sc.GEN_AI_USAGE_OUTPUT_TOKENS: "output_tokens",
    sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS: "cached_input_tokens",
    sc.GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS: "cache_write_tokens",
    sc.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS: "cache_write_tokens",
    sc.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS: "reasoning_tokens",
    sc.GEN_AI_USAGE_AUDIO_INPUT_TOKENS: "input_audio_tokens",
    sc.GEN_AI_USAGE_IMAGE_OUTPUT_TOKENS: "output_image_tokens",
    sc.USAGE_IMAGES: "images",
    sc.USAGE_INPUT_CHARACTERS: "input_characters",
    sc.USAGE_WEB_SEARCH_CALLS: "web_search_calls",
    sc.USAGE_CODE_INTERPRETER_SESSIONS: "code_interpreter_sessions",
}


def expected_count(value: Any) -> int | None:
    """The token count a value of any type stands for (None: it stands for none and is dropped)."""
    if type(value) is int:
        return value
    if type(value) is float:
        return int(value) if math.isfinite(value) and value.is_integer() else None
    if type(value) is str:
        try:
            return int(value)
        except ValueError:
            return None
    return None  # bool, bytes, arrays, key-value lists, no value


@fuzz_settings(400)
@given(key=st.sampled_from(sorted(TOKEN_KEYS)), value=VALUES)
@example(key=sc.GEN_AI_USAGE_INPUT_TOKENS, value=1e300)  # priced before validation: InvalidOperation, a 503
@example(key=sc.GEN_AI_USAGE_OUTPUT_TOKENS, value="9" * 400)
@example(key=sc.GEN_AI_USAGE_INPUT_TOKENS, value=math.nan)
@example(key=sc.GEN_AI_USAGE_OUTPUT_TOKENS, value=-1.0)
@example(key=sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS, value=-5)
@example(key=sc.GEN_AI_USAGE_INPUT_TOKENS, value=True)
def test_a_token_attribute_of_any_type_is_stored_as_its_count_or_dropped_or_rejected(key: str, value: Any) -> None:
    column = TOKEN_KEYS[key]
    attributes = [(name, item) for name, item in chat_attributes().items() if name != key] + [(key, value)]
    rows, rejected, _ = ingest(one_span_request(attributes))

    count = expected_count(value)
    if count is not None and not 0 <= count < 2**53:
        assert rows == []
        (message,) = rejected
        assert f"{column} {count} is out of range" in message
        return
    if rows == []:
        # A count the schema holds can still price above DECIMAL(18,9): such a call is garbage, and said so.
        (message,) = rejected
        assert "cost_usd" in message, message
        assert "out of range" in message, message
        assert count is not None
        assert count > 10**9
        return
    (row,) = rows
    assert rejected == []
    assert row[column] == count
    assert_storable(row)


@fuzz_settings(200)
@given(
    junk=st.lists(
        st.tuples(
            st.text(max_size=30).filter(
                lambda key: key not in dialects.FIELDS and not key.startswith(("llmledger.", "gen_ai.completion."))
            ),
            VALUES,
        ),
        max_size=6,
    ),
    at=st.integers(0, 20),
)
def test_attributes_no_dialect_knows_change_nothing(junk: list[tuple[str, Any]], at: int) -> None:
    attributes = list(chat_attributes().items())
    (plain,), _, _ = ingest(one_span_request(attributes))
    (with_junk,), rejected, _ = ingest(one_span_request(attributes[:at] + junk + attributes[at:]))
    assert rejected == []
    assert with_junk == plain


def test_deeply_nested_invocation_parameters_drop_the_attribute_not_the_span() -> None:
    # json.loads raised RecursionError (not a ValueError): the span was rejected as "could not be normalised".
    attributes = [
        (sc.OPENINFERENCE_SPAN_KIND, "LLM"),
        (sc.LLM_MODEL_NAME, "gpt-4o"),
        (sc.LLM_INVOCATION_PARAMETERS, "[" * 100_000),
    ]
    (row,), rejected, _ = ingest(one_span_request(attributes))
    assert rejected == []
    assert row["response_model"] == "gpt-4o"


def test_an_integer_too_large_for_a_float_in_invocation_parameters_is_dropped() -> None:
    # float(10**400) raised OverflowError in to_float, again rejecting the whole span.
    parameters = '{"model": "gpt-4o", "temperature": 1' + "0" * 400 + ', "max_tokens": 64}'
    attributes = [(sc.OPENINFERENCE_SPAN_KIND, "LLM"), (sc.LLM_INVOCATION_PARAMETERS, parameters)]
    (row,), rejected, _ = ingest(one_span_request(attributes))
    assert rejected == []
    assert (row["request_model"], row["temperature"], row["max_tokens"]) == ("gpt-4o", None, 64)


def test_a_token_count_too_large_to_price_is_rejected_alone() -> None:
    # Pricing came before validation, and Decimal.quantize raised InvalidOperation for 1e300 tokens: the whole
    # request failed (HTTP 503), so its valid spans were refused too and the sender retried them forever.
    good = one_span_request(list(chat_attributes().items()), span_id=b"\x01" * 8)
    hostile = one_span_request(
        list(chat_attributes(**{sc.GEN_AI_USAGE_INPUT_TOKENS: 1e300}).items()), span_id=b"\x02" * 8
    )
    good.resource_spans[0].scope_spans[0].spans.extend(hostile.resource_spans[0].scope_spans[0].spans)
    rows, rejected, _ = ingest(good)
    assert [row["span_id"] for row in rows] == ["01" * 8]
    (message,) = rejected
    assert message.startswith(f"span {'02' * 8}"), message
    assert "input_tokens" in message, message
    assert "out of range" in message, message


# --- the converters on their own: any value in, the column's type or None out ------------------------------------

ANY_VALUE = VALUES | JSON_VALUES


@fuzz_settings(500)
@given(value=ANY_VALUE)
def test_converters_return_their_type_or_none(value: Any) -> None:
    number = dialects.to_int(value)
    assert number is None or type(number) is int
    real = dialects.to_float(value)
    assert real is None or (type(real) is float and math.isfinite(real))
    milliseconds = dialects.seconds_to_ms(value)
    assert milliseconds is None or (type(milliseconds) is float and not math.isnan(milliseconds))
    flag = dialects.to_bool(value)
    assert flag is None or type(flag) is bool
    money = dialects.to_decimal(value)
    assert money is None or (type(money) is Decimal and money.is_finite())
    for convert in (dialects.to_str, dialects.to_reasons, dialects.to_error_type):
        text = convert(value)
        assert text is None or (type(text) is str and text != "")
    error_type = dialects.to_error_type(value)
    assert error_type is None or "." not in error_type
    if type(value) is str:
        parsed = dialects.to_json_object(value)
        assert parsed is None or type(parsed) is dict
