"""The Spend page's price list, run by AppTest against a real collector fetching price lists from a local server: which
list and how old, the models with no price, and the notice of a newer list with its dry-run diff, then re-pricing."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from dashboard.parts import filters
from llmledger import pricing
from llmledger import semconv as sc
from tests.collector_harness import RunningCollector
from tests.otlp_spans import chat_attributes, request_with
from tests.price_server import MINI, NOVA, PriceServer, price_file

APP = Path(__file__).parents[2] / "dashboard" / "app.py"
PAGE = "views/spend.py"
PROTOBUF = {"Content-Type": "application/x-protobuf"}
NOW = datetime.now(UTC).replace(microsecond=0)
FIRST, SECOND = price_file(MINI), price_file(MINI, NOVA)


def version_of(body: bytes) -> str:
    return pricing.list_version(hashlib.sha256(body).hexdigest())


def send(running: RunningCollector, request_id: str, model: str) -> None:
    attributes = chat_attributes(**{sc.REQUEST_ID: request_id, sc.GEN_AI_REQUEST_MODEL: model,
                                    sc.GEN_AI_RESPONSE_MODEL: model, sc.GEN_AI_USAGE_INPUT_TOKENS: 1000,
                                    sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS: 200, sc.GEN_AI_USAGE_OUTPUT_TOKENS: 100,
                                    sc.GEN_AI_USAGE_COST_AMOUNT: None})  # fmt: skip
    at = NOW - timedelta(hours=1)
    body = request_with([attributes], start_ns=int(at.timestamp() * 1e9)).SerializeToString()
    assert running.http.post("/v1/traces", content=body, headers=PROTOBUF).status_code == 200


def adopted(running: RunningCollector, body: bytes) -> None:
    deadline = time.monotonic() + 30
    while running.get("/healthz")["prices"]["list_version"] != version_of(body):
        assert time.monotonic() < deadline, "the collector never took the list"
        time.sleep(0.05)


@pytest.fixture
def running(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[RunningCollector]:
    """A call of a model the first list lacks and one it knows, then a second list that knows both."""
    server = PriceServer()
    server.serve(FIRST)
    collector = RunningCollector(
        tmp_path / "x.duckdb", "--prices-update", server.url, "--prices-update-interval", "0.2"
    )
    monkeypatch.setenv("LLMLEDGER_API_URL", collector.url)
    monkeypatch.delenv("LLMLEDGER_READ_TOKEN", raising=False)
    monkeypatch.delenv("LLMLEDGER_READ_TOKEN_FILE", raising=False)
    monkeypatch.setattr(filters, "now_utc", lambda: NOW)
    st.cache_data.clear()
    try:
        adopted(collector, FIRST)
        send(collector, "mini", "gpt-4o-mini")
        send(collector, "nova", "gpt-9-nova")
        server.serve(SECOND)
        adopted(collector, SECOND)
        yield collector
    finally:
        st.cache_data.clear()
        collector.stop()
        server.stop()


def texts(elements: Any) -> str:
    return " ".join(str(item.value) for item in elements)


def test_a_newer_list_is_noticed_previewed_and_applied(running: RunningCollector) -> None:
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    at.switch_page(PAGE).run()
    assert not at.exception, [item.value for item in at.exception]
    assert f"Prices: list {version_of(SECOND)} (2 models)" in texts(at.caption)
    unpriced = next(frame.value for frame in at.dataframe if "Priced by the list now" in frame.value.columns)
    assert unpriced.to_dict("records") == [
        {"Model": "gpt-9-nova", "Provider": "openai", "Calls": 1, "Input tokens": 1000, "Output tokens": 100,
         "Priced by the list now": True}
    ]  # fmt: skip
    assert "1 calls were priced with another list, and 1 unpriced calls have a model it knows now" in texts(at.info)

    at.button(key="reprice_preview_button").click().run()
    assert not at.exception, [item.value for item in at.exception]
    diff = next(frame.value for frame in at.dataframe if "Calls changing" in frame.value.columns)
    # 800 x 2 + 200 x 0.5 + 100 x 8 = 2500 (USD per million tokens); gpt-4o-mini keeps its cost, takes the version.
    assert diff.to_dict("records") == [
        {"Model": "gpt-9-nova", "Calls changing": 1, "Costs changing": 1, "Now (USD)": "0",
         "After (USD)": "0.002500000", "Difference (USD)": "0.002500000"},
        {"Model": "gpt-4o-mini", "Calls changing": 1, "Costs changing": 0, "Now (USD)": "0.000195000",
         "After (USD)": "0.000195000", "Difference (USD)": "0.000000000"},
    ]  # fmt: skip
    assert "Re-pricing would change **2** of 2 calls (**1** in cost)" in texts(at.markdown)
    calls = running.get("/api/v1/calls", **{"from": "2000-01-01"})["calls"]
    assert {call["request_id"]: call["cost_usd"] for call in calls} == {"mini": "0.000195000", "nova": None}

    at.button(key="reprice_apply_button").click().run()
    assert not at.exception, [item.value for item in at.exception]
    assert "Re-priced: 2 calls changed" in texts(at.success)
    calls = running.get("/api/v1/calls", **{"from": "2000-01-01"})["calls"]
    assert {call["request_id"]: (call["cost_usd"], call["price_version"]) for call in calls} == {
        "mini": ("0.000195000", version_of(SECOND)),
        "nova": ("0.002500000", version_of(SECOND)),
    }
    at.run()
    assert "priced with another list" not in texts(at.info)
    assert not any("Priced by the list now" in frame.value.columns for frame in at.dataframe)
