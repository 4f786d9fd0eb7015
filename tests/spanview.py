"""Whole-span views with the parts that vary between runs (ports, timings) made deterministic."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from genai_prices import Usage, calc_price
from opentelemetry.sdk.trace import ReadableSpan

from llmledger import pricing
from llmledger import semconv as sc

from .conftest import API_KEY  # noqa: F401 - re-exported for tests

TIMING = "<timing>"
_SIGNALS = frozenset(sc.SIGNAL_ATTRIBUTES)


def view(span: ReadableSpan) -> dict[str, Any]:
    """name, kind, status and every attribute but the content signals (tests/llmledger/test_signals.py checks those);
    ports and timings replaced by placeholders."""
    attrs = {
        key: list(value) if isinstance(value, tuple) else value
        for key, value in span.attributes.items()
        if key not in _SIGNALS
    }
    assert span.end_time is not None
    assert span.start_time is not None
    duration_s = (span.end_time - span.start_time) / 1e9
    if sc.SERVER_PORT in attrs:
        assert isinstance(attrs[sc.SERVER_PORT], int)
        attrs[sc.SERVER_PORT] = "<port>"
    if sc.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK in attrs:
        ttft = attrs[sc.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK]
        assert 0 < ttft <= duration_s
        attrs[sc.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK] = TIMING
    return {
        "name": span.name,
        "kind": span.kind.name,
        "status": span.status.status_code.name,
        "attributes": attrs,
    }


def client_attrs(**overrides: Any) -> dict[str, Any]:
    """What every span from the test client carries."""
    attrs: dict[str, Any] = {
        sc.GEN_AI_PROVIDER_NAME: "openai",
        sc.SERVER_ADDRESS: "127.0.0.1",
        sc.SERVER_PORT: "<port>",
        sc.CLIENT_KEY_KIND: "project",
        sc.CLIENT_TIMEOUT_S: 600.0,
        sc.CLIENT_MAX_RETRIES: 2,
        sc.CONTENT_CAPTURED: False,
        sc.CONTENT_REDACTED: False,
        sc.REQUEST_USER_SET: False,
        sc.ATTEMPTS: 1,
        sc.HTTP_RESPONSE_STATUS_CODE: 200,
    }
    attrs.update(overrides)
    return attrs


def cost_attrs(model: str, input_tokens: int, output_tokens: int, cached: int = 0, tier: str | None = None) -> dict:
    """The cost attributes, with the amount computed independently by genai-prices itself. A call billed on tokens
    carries no `llmledger.billing_unit`: the collector takes one with token counts for `tokens`."""
    context = {"service_tier": tier} if tier in ("flex", "priority") else None
    price = calc_price(
        Usage(input_tokens=input_tokens, cache_read_tokens=cached, output_tokens=output_tokens),
        model,
        provider_id="openai",
        price_context=context,
    )
    return {
        sc.GEN_AI_USAGE_COST_AMOUNT: pytest.approx(float(price.total_price), rel=1e-9),
        sc.GEN_AI_USAGE_COST_CURRENCY: "USD",
        sc.GEN_AI_USAGE_COST_SOURCE: "local",
        sc.PRICE_VERSION: pricing.PRICE_VERSION,
    }


def as_decimal(value: float) -> Decimal:
    return Decimal(repr(value))
