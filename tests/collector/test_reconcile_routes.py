"""Reconciliation of every route OpenAI bills: chat, images, audio, built-in tools, and the charges no call makes.

An app whose calls the wrapper all saw, through a real collector; OpenAI's Costs API (the local fake) bills those
calls at list price in its own line items, plus a key that never went through the wrapper. Untracked spend must come
down to that key's line: every other line item is matched with our calls (by model, or by the calls that used a
tool), and Azure OpenAI and OpenRouter calls, which OpenAI does not bill, are left out of our side.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from collector.api.auth import Tokens
from collector.metrics import Metrics
from collector.reconcile.line_items import MODEL, OUTSIDE_CALLS, TOOL, classify
from collector.store.retention import Retention
from dashboard.parts import filters
from llmledger import pricing
from llmledger import semconv as sc
from llmledger.testing.fake_openai_admin import CostItem, FakeOpenAIAdmin
from tests.collector_harness import RunningCollector
from tests.otlp_spans import chat_attributes, new_request_id, request_with

TOKENS = Tokens(ingest="ingest-token", read="read-token", admin="admin-token")
ADMIN_KEY = "sk-admin-Wq3eR8tY1uI6oP0aS5dF2gH7jK4lZ9xC"
APP = Path(__file__).parents[2] / "dashboard" / "app.py"
# One day per scenario, away from test_reconcile.py's days. RETAINED's raw calls are deleted by retention.
RETAINED, EVERY_ROUTE, OUTSIDE, NO_TOOL_CALLS, TWO_MODELS = (date(2025, 9, day) for day in (7, 8, 9, 10, 11))
MINI = "gpt-4o-mini-2024-07-18"
NO_WRAPPER_PROJECT = "proj_NoWrapper4Kd8Lq2"


def at(day: date, hour: int = 10) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC)


def route(operation: str, api_type: str, model: str, **attrs: Any) -> dict[str, Any]:
    """A span of a route other than chat, as the wrapper records it (no response model: the API reports none)."""
    return {
        sc.GEN_AI_OPERATION_NAME: operation,
        sc.GEN_AI_PROVIDER_NAME: sc.PROVIDER_OPENAI,
        sc.OPENAI_API_TYPE: api_type,
        sc.GEN_AI_REQUEST_MODEL: model,
        sc.REQUEST_ID: "req_route",
        sc.ATTEMPTS: 1,
        **attrs,
    }


CHAT = chat_attributes(**{sc.BILLING_UNIT: "tokens"})  # gpt-4o-mini: 1000 input (200 cached), 100 output
WEB_SEARCH = chat_attributes(**{
    sc.OPENAI_API_TYPE: "responses", sc.USAGE_WEB_SEARCH_CALLS: 2, sc.GEN_AI_USAGE_INPUT_TOKENS: 6000,
    sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS: 0, sc.GEN_AI_USAGE_OUTPUT_TOKENS: 300, sc.BILLING_UNIT: "tokens",
})  # fmt: skip
GPT_IMAGE = route(
    "image_generation", "images", "gpt-image-1", **{
        sc.USAGE_IMAGES: 1, sc.IMAGE_SIZE: "1024x1024", sc.IMAGE_QUALITY: "medium", sc.BILLING_UNIT: "tokens",
        sc.GEN_AI_USAGE_INPUT_TOKENS: 363, sc.GEN_AI_USAGE_OUTPUT_TOKENS: 1056,
        sc.GEN_AI_USAGE_IMAGE_INPUT_TOKENS: 323, sc.GEN_AI_USAGE_TEXT_INPUT_TOKENS: 40,
        sc.GEN_AI_USAGE_IMAGE_OUTPUT_TOKENS: 1056,
    },
)  # fmt: skip
DALL_E = route("image_generation", "images", "dall-e-3", **{
    sc.USAGE_IMAGES: 1, sc.IMAGE_SIZE: "1792x1024", sc.IMAGE_QUALITY: "hd", sc.BILLING_UNIT: "images",
})  # fmt: skip
SPEECH = route("text_to_speech", "audio_speech", "tts-1", **{
    sc.USAGE_INPUT_CHARACTERS: 1200, sc.BILLING_UNIT: "characters",
})  # fmt: skip
TRANSCRIPTION = route("speech_to_text", "audio_transcriptions", "whisper-1", **{
    sc.USAGE_AUDIO_SECONDS: 95.0, sc.BILLING_UNIT: "audio_seconds",
})  # fmt: skip
MODERATION = route("moderation", "moderations", "omni-moderation-latest", **{
    sc.GEN_AI_RESPONSE_MODEL: "omni-moderation-2024-09-26", sc.BILLING_UNIT: "requests",
})  # fmt: skip
# The same model through other providers: on their bills, not OpenAI's.
AZURE = chat_attributes(**{
    sc.GEN_AI_PROVIDER_NAME: sc.PROVIDER_AZURE, sc.GEN_AI_REQUEST_MODEL: "hr-chat", sc.DEPLOYMENT: "hr-chat",
    sc.SERVER_ADDRESS: "acme-hr-eu.openai.azure.com", sc.OPENAI_RESPONSE_SERVICE_TIER: None,
    sc.BILLING_UNIT: "tokens",
})  # fmt: skip
OPENROUTER = chat_attributes(**{
    sc.GEN_AI_PROVIDER_NAME: "openrouter", sc.GEN_AI_REQUEST_MODEL: "openai/gpt-4o-mini",
    sc.GEN_AI_RESPONSE_MODEL: "openai/gpt-4o-mini", sc.SERVER_ADDRESS: "openrouter.ai",
    sc.OPENAI_RESPONSE_SERVICE_TIER: None, sc.BILLING_UNIT: "tokens", sc.GEN_AI_USAGE_COST_AMOUNT: 0.000288,
    sc.GEN_AI_USAGE_COST_CURRENCY: "USD", sc.GEN_AI_USAGE_COST_SOURCE: sc.COST_SOURCE_PROVIDER,
})  # fmt: skip

OUR_CALLS = {
    RETAINED: [WEB_SEARCH, {**WEB_SEARCH, sc.GEN_AI_REQUEST_MODEL: "gpt-4o",
                            sc.GEN_AI_RESPONSE_MODEL: "gpt-4o-2024-08-06", sc.USAGE_WEB_SEARCH_CALLS: 3}],
    EVERY_ROUTE: [CHAT, CHAT, WEB_SEARCH, GPT_IMAGE, DALL_E, SPEECH, TRANSCRIPTION, MODERATION, AZURE, OPENROUTER],
    OUTSIDE: [CHAT, WEB_SEARCH],
    NO_TOOL_CALLS: [CHAT],
    TWO_MODELS: [WEB_SEARCH, {**WEB_SEARCH, sc.GEN_AI_REQUEST_MODEL: "gpt-4o",
                              sc.GEN_AI_RESPONSE_MODEL: "gpt-4o-2024-08-06", sc.USAGE_WEB_SEARCH_CALLS: 1}],
}  # fmt: skip


def list_price(attrs: dict[str, Any], day: date) -> dict[str, Decimal]:
    """One call as OpenAI bills it at list price: {"input"/"output"/"tools" or "" (per unit): USD}."""
    model = attrs.get(sc.GEN_AI_RESPONSE_MODEL) or attrs[sc.GEN_AI_REQUEST_MODEL]
    if attrs[sc.OPENAI_API_TYPE] == "moderations":
        return {}  # free: no line item
    rates = pricing.rates_for(model, "default", when=at(day))
    assert rates is not None, model
    usage = pricing.Usage.from_attributes(attrs)
    if attrs[sc.BILLING_UNIT] != "tokens":
        return {"": rates.cost(usage)}
    tokens = replace(usage, web_search_calls=0)
    input_cost = rates.cost(replace(tokens, output_tokens=0, output_image_tokens=0))
    return {
        "input": input_cost,
        "output": rates.cost(tokens) - input_cost,
        "tools": rates.cost(usage) - rates.cost(tokens),
    }


def openai_bill(day: date, web_search: str = "web search tool calls") -> list[CostItem]:
    """OpenAI's cost line items for our OpenAI calls of `day` (Azure's and OpenRouter's are not on this bill)."""
    amounts: dict[str, Decimal] = {}
    for attrs in OUR_CALLS[day]:
        if attrs[sc.GEN_AI_PROVIDER_NAME] != sc.PROVIDER_OPENAI:
            continue
        model = attrs.get(sc.GEN_AI_RESPONSE_MODEL) or attrs[sc.GEN_AI_REQUEST_MODEL]
        for part, amount in list_price(attrs, day).items():
            name = web_search if part == "tools" else f"{model}, {part}" if part else model
            amounts[name] = amounts.get(name, Decimal(0)) + amount
    return [CostItem(day, amount, name, "proj_app") for name, amount in amounts.items() if amount]


KEY_WITHOUT_WRAPPER = CostItem(EVERY_ROUTE, Decimal("0.3125"), "gpt-4.1-2025-04-14, input", NO_WRAPPER_PROJECT)
STORAGE = CostItem(OUTSIDE, Decimal("0.2"), "vector store storage", "proj_app")
TRAINING = CostItem(OUTSIDE, Decimal("12.5"), "fine-tuning training", "proj_app")
FILE_SEARCH = CostItem(NO_TOOL_CALLS, Decimal("0.05"), "file search tool calls", "proj_app")


@pytest.fixture(scope="module")
def ledger(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningCollector]:
    """A collector holding our calls, with OpenAI's bill for them pulled."""
    folder = tmp_path_factory.mktemp("reconcile-routes")
    (folder / "admin-key").write_text(ADMIN_KEY + "\n")
    with FakeOpenAIAdmin() as fake, pytest.MonkeyPatch.context() as env:
        env.setenv("OPENAI_BASE_URL", fake.base_url)
        env.delenv("OPENAI_ADMIN_KEY", raising=False)
        args = ("--openai-admin-key-file", str(folder / "admin-key"), "--reconcile-interval", "0")
        running = RunningCollector(folder / "ledger.duckdb", *args, tokens=TOKENS)
        try:
            headers = {"content-type": "application/x-protobuf", "Authorization": f"Bearer {TOKENS.ingest}"}
            for day, spans in OUR_CALLS.items():
                calls = [{**span, sc.REQUEST_ID: new_request_id()} for span in spans]  # each its own call
                body = request_with(calls, service="app", start_ns=int(at(day).timestamp() * 1e9))
                answer = running.http.post("/v1/traces", content=body.SerializeToString(), headers=headers)
                assert answer.status_code == 200, answer.text
            fake.costs = [
                *openai_bill(EVERY_ROUTE),
                KEY_WITHOUT_WRAPPER,
                *openai_bill(OUTSIDE, web_search="Web search tool calls | gpt-4o-mini"),
                STORAGE,
                TRAINING,
                *openai_bill(NO_TOOL_CALLS),
                FILE_SEARCH,
                *openai_bill(TWO_MODELS),
                *openai_bill(RETAINED),
            ]
            window = {"from": RETAINED.isoformat(), "to": (TWO_MODELS + timedelta(days=1)).isoformat()}
            pulled = running.http.post("/api/v1/reconcile", params=window, headers=auth(TOKENS.admin))
            assert pulled.status_code == 200, pulled.text
            # Keep one whole day as of the day after EVERY_ROUTE: RETAINED's raw calls go, its rollup stays.
            deleted = Retention(running.collector.store, 1, Metrics()).run_once(at(EVERY_ROUTE + timedelta(days=1)))
            assert deleted == len(OUR_CALLS[RETAINED])
            yield running
        finally:
            running.stop()


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def compare(ledger: RunningCollector, day: date, by: str = "day") -> dict[str, Any]:
    params = {"from": day.isoformat(), "to": (day + timedelta(days=1)).isoformat(), "by": by}
    answer = ledger.http.get("/api/v1/reconciliation", params=params, headers=auth(TOKENS.read))
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_line_items_are_read_as_models_tools_or_charges_outside_calls() -> None:
    assert classify("gpt-4o-mini-2024-07-18, cached input") == classify("gpt-4o-mini, input")
    assert (classify("gpt-image-1, output").kind, classify("gpt-image-1, output").model) == (MODEL, "gpt-image-1")
    for line_item, model in (("dall-e-3", "dall-e-3"), ("tts-1", "tts-1"), ("whisper-1", "whisper-1"),
                             ("gpt-4o-transcribe, input", "gpt-4o-transcribe"),
                             ("gpt-realtime, input audio", "gpt-realtime")):  # fmt: skip
        assert classify(line_item).model == model
    assert classify("web search tool calls") == classify("Web search tool calls")
    assert (classify("web search tool calls").kind, classify("web search tool calls").tool) == (
        TOOL,
        "web_search_calls",
    )
    named = classify("Web search tool calls | gpt-4o-mini-2024-07-18")
    assert (named.kind, named.tool, named.model) == (TOOL, "web_search_calls", "gpt-4o-mini")
    assert classify("file search tool calls").tool == "file_search_calls"
    assert classify("code interpreter sessions").tool == "code_interpreter_sessions"
    for line_item in ("vector store storage", "fine-tuning training", "fine-tuning, training"):
        assert classify(line_item).kind == OUTSIDE_CALLS


def test_untracked_spend_is_only_the_key_without_the_wrapper(ledger: RunningCollector) -> None:
    answer = compare(ledger, EVERY_ROUTE)
    assert answer["totals"]["untracked_usd"] == "0.312500000"
    assert answer["untracked"] == [
        {
            "day": EVERY_ROUTE.isoformat(), "line_item": "gpt-4.1-2025-04-14, input", "model": "gpt-4.1",
            "model_seen": False, "kind": MODEL, "openai_cost_usd": "0.312500000", "untracked_usd": "0.312500000",
        }
    ]  # fmt: skip
    (day,) = answer["rows"]
    billed = sum((Decimal(item.amount) for item in openai_bill(EVERY_ROUTE)), Decimal(0))
    assert Decimal(day["our_cost_usd"]) == billed  # every route priced as OpenAI bills it, to the nano-dollar
    assert Decimal(day["openai_cost_usd"]) == billed + KEY_WITHOUT_WRAPPER.amount


def test_each_route_matches_its_line_items_and_other_providers_are_left_out(ledger: RunningCollector) -> None:
    rows = {row["model"]: row for row in compare(ledger, EVERY_ROUTE, by="model")["rows"]}
    assert set(rows) == {"gpt-4o-mini", "gpt-image-1", "dall-e-3", "tts-1", "whisper-1", "omni-moderation", "gpt-4.1"}
    for model in ("gpt-4o-mini", "gpt-image-1", "dall-e-3", "tts-1", "whisper-1"):
        assert rows[model]["diff_usd"] == "0.000000000", model
        assert Decimal(rows[model]["our_cost_usd"]) > 0, model
    # Two chats and the web search answer: not the Azure call of the same model, nor OpenRouter's.
    assert rows["gpt-4o-mini"]["our_requests"] == 3
    moderation = rows["omni-moderation"]
    assert (moderation["our_cost_usd"], moderation["openai_cost_usd"], moderation["our_unpriced_requests"]) == (
        "0.000000000", "0.000000000", 0,
    )  # fmt: skip
    summary = ledger.http.get(
        "/api/v1/summary",
        params={"from": EVERY_ROUTE.isoformat(), "to": (EVERY_ROUTE + timedelta(days=1)).isoformat()},
        headers=auth(TOKENS.read),
    ).json()
    assert summary["requests"] == len(OUR_CALLS[EVERY_ROUTE])  # they are stored, only not set against OpenAI's bill


def test_charges_billed_outside_calls_stay_untracked(ledger: RunningCollector) -> None:
    answer = compare(ledger, OUTSIDE)
    assert answer["totals"]["untracked_usd"] == "12.700000000"  # storage and training; web search names its model
    lost = {row["line_item"]: row for row in answer["untracked"]}
    assert set(lost) == {"vector store storage", "fine-tuning training"}
    assert {(row["kind"], row["model_seen"]) for row in lost.values()} == {(OUTSIDE_CALLS, False)}
    assert lost["fine-tuning training"]["untracked_usd"] == "12.500000000"
    mini = {row["model"]: row for row in compare(ledger, OUTSIDE, by="model")["rows"]}["gpt-4o-mini"]
    assert mini["diff_usd"] == "0.000000000"


def test_a_tool_line_item_without_calls_that_used_the_tool_is_untracked(ledger: RunningCollector) -> None:
    answer = compare(ledger, NO_TOOL_CALLS)
    assert [
        (row["line_item"], row["kind"], row["model_seen"], row["untracked_usd"]) for row in answer["untracked"]
    ] == [("file search tool calls", TOOL, False, "0.050000000")]


def test_a_tool_line_item_is_shared_by_the_models_whose_calls_used_the_tool(ledger: RunningCollector) -> None:
    answer = compare(ledger, TWO_MODELS, by="model")
    assert answer["totals"]["untracked_usd"] == "0.000000000"
    rows = {row["model"]: row for row in answer["rows"]}
    assert set(rows) == {"gpt-4o-mini", "gpt-4o"}  # no row for "web search tool calls": it joined both models
    assert {rows[model]["diff_usd"] for model in rows} == {"0.000000000"}


def test_a_tool_line_item_finds_its_models_after_retention_deleted_their_calls(ledger: RunningCollector) -> None:
    raw = ledger.http.get(
        "/api/v1/summary",
        params={"from": RETAINED.isoformat(), "to": EVERY_ROUTE.isoformat()},
        headers=auth(TOKENS.read),
    ).json()
    assert raw["requests"] == 0  # retention deleted the day's calls
    answer = compare(ledger, RETAINED, by="model")
    # "web search tool calls" names no model: the rollup's tool-call counts share it between the two models
    # (2 and 3 searches), as they did while the raw calls were there.
    assert (answer["totals"]["untracked_usd"], answer["untracked"]) == ("0.000000000", [])
    rows = {row["model"]: row for row in answer["rows"]}
    assert set(rows) == {"gpt-4o-mini", "gpt-4o"}
    assert {rows[model]["diff_usd"] for model in rows} == {"0.000000000"}
    assert (rows["gpt-4o-mini"]["our_requests"], rows["gpt-4o"]["our_requests"]) == (1, 1)


def test_the_page_names_charges_billed_outside_calls(ledger: RunningCollector, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMLEDGER_API_URL", ledger.url)
    monkeypatch.setenv("LLMLEDGER_ADMIN_TOKEN", TOKENS.admin)
    monkeypatch.setattr(filters, "now_utc", lambda: at(TWO_MODELS, 18))
    st.cache_data.clear()
    app = AppTest.from_file(APP, default_timeout=60)
    app.run()
    app.switch_page("views/reconciliation.py").run()
    assert not app.exception, [item.value for item in app.exception]
    lost = app.dataframe[1].value
    seen = dict(zip(lost["Line item"], lost["Model seen by us"], strict=True))
    assert seen["vector store storage"] == seen["fine-tuning training"] == "billed outside calls"
    assert seen["gpt-4.1-2025-04-14, input"] == "no"
