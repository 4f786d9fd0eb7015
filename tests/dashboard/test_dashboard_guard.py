"""The Guard page, run by AppTest against a real collector holding calls the guard acted on, and enforced budgets."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from dashboard.data import guard_client
from dashboard.parts import filters, ui
from llmledger import semconv as sc
from tests.collector_harness import RunningCollector
from tests.otlp_spans import alike, chat_attributes, request_with

APP = Path(__file__).parents[2] / "dashboard" / "app.py"
PAGE = "views/guard.py"
PROTOBUF = {"Content-Type": "application/x-protobuf"}
NOW = datetime.now(UTC).replace(microsecond=0)
STOPPED = {sc.ERROR_TYPE: "BudgetExceeded", sc.GEN_AI_USAGE_INPUT_TOKENS: None, sc.GEN_AI_USAGE_OUTPUT_TOKENS: None,
           sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS: None, sc.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS: None,
           sc.GEN_AI_RESPONSE_MODEL: None, sc.GEN_AI_RESPONSE_FINISH_REASONS: None}  # fmt: skip
BUDGET = {"name": "search daily", "metric": "cost", "window": "day", "op": ">", "threshold": 0.000001,
          "filters": {"team": ["search"]}, "enforce": {"action": "block"}}  # fmt: skip
MONTHLY = {**BUDGET, "name": "gpt-4o monthly", "window": "month", "op": ">=", "threshold": 1000, "filters": {},
           "enforce": {"action": "downgrade", "downgrade_to": "gpt-4o-mini"}}  # fmt: skip


def guarded(action: str | None = None, **attrs: Any) -> dict[str, Any]:
    return chat_attributes(**{sc.TEAM: "search", sc.GUARD_ENABLED: True, sc.GUARD_ACTION: action, **attrs})


def send(running: RunningCollector, spans: list[dict[str, Any]], at: datetime) -> None:
    body = request_with(spans, start_ns=int(at.timestamp() * 1e9)).SerializeToString()
    assert running.http.post("/v1/traces", content=body, headers=PROTOBUF).status_code == 200


@pytest.fixture
def running(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[RunningCollector]:
    """Guarded calls over the last hours (two circuits: one open minutes ago, one two hours ago) and budgets."""
    collector = RunningCollector(tmp_path / "x.duckdb", "--alert-interval", "3600")
    monkeypatch.setenv("LLMLEDGER_API_URL", collector.url)
    monkeypatch.delenv("LLMLEDGER_READ_TOKEN", raising=False)
    monkeypatch.delenv("LLMLEDGER_READ_TOKEN_FILE", raising=False)
    monkeypatch.setattr(filters, "now_utc", lambda: NOW)
    st.cache_data.clear()
    try:
        send(collector, [guarded(), guarded(), guarded("paced", **{sc.GUARD_WAIT_MS: 250.0})], NOW - timedelta(hours=3))
        send(collector, alike(guarded("blocked", **STOPPED, **{sc.GUARD_BUDGET_ID: 1}), 2), NOW - timedelta(minutes=40))
        send(collector, [guarded("downgraded", **{sc.GUARD_BUDGET_ID: 2, sc.GUARD_ORIGINAL_MODEL: "gpt-4o"})],
             NOW - timedelta(minutes=30))  # fmt: skip
        circuit = {**STOPPED, sc.ERROR_TYPE: "CircuitOpen"}
        send(collector, [guarded("circuit_open", **circuit, **{sc.GUARD_BREAKER: "openai/gpt-4.1"})],
             NOW - timedelta(hours=2))  # fmt: skip
        send(collector, alike(guarded("circuit_open", **circuit, **{sc.GUARD_BREAKER: "openai/gpt-4o"}), 2),
             NOW - timedelta(minutes=5))  # fmt: skip
        yield collector
    finally:
        st.cache_data.clear()
        collector.stop()


def page() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    at.switch_page(PAGE).run()
    assert not at.exception, [item.value for item in at.exception]
    assert not at.error, [item.value for item in at.error]
    return at


def texts(elements: Any) -> str:
    return " ".join(str(item.value) for item in elements)


def test_the_page_shows_what_the_guard_did_open_circuits_and_budgets(running: RunningCollector) -> None:
    day_id = running.http.post("/api/v1/alert-rules", json=BUDGET).json()["id"]
    month_id = running.http.post("/api/v1/alert-rules", json=MONTHLY).json()["id"]
    running.http.post("/api/v1/alert-rules", json={**BUDGET, "name": "only an alert", "enforce": None})
    # A priced call in the collector's current UTC day (its clock, not the page's NOW): the fixture's are hours old
    # and may be yesterday's, after midnight or when the suite crosses it.
    send(running, [guarded()], datetime.now(UTC))
    at = page()
    assert {metric.label: metric.value for metric in at.metric} == {
        "Blocked": "2", "Downgraded": "1", "Circuit open": "3", "Paced": "1", "Rerouted": "0", "Warned": "0",
    }  # fmt: skip
    assert "Calls the guard acted on (1h buckets)" in texts(at.subheader)
    assert len(at.get("vega_lite_chart")) == 1

    circuits = at.dataframe[0].value
    assert list(circuits["Circuit (provider/model)"]) == ["openai/gpt-4o"]  # gpt-4.1's was two hours ago
    assert list(circuits["Calls turned away"]) == [2]
    assert "1 circuit(s) turned calls away in the last 15 minutes." in texts(at.warning)

    budgets = {budget.id: budget for budget in guard_client.budgets(running.url, None)}
    assert set(budgets) == {day_id, month_id}
    spent = Decimal(running.get("/v1/guard/budgets")["budgets"][0]["spent_usd"])
    assert spent > 0
    bars = [bar.proto.text for bar in at.get("progress")]
    assert bars == [
        f"search daily: spent {ui.usd(spent)} today of {ui.usd(Decimal('0.000001'))} — then block (acting now)",
        f"gpt-4o monthly: spent {ui.usd(budgets[month_id].spent)} this month of $1,000.00 — then downgrade to "
        "gpt-4o-mini",
    ]
    table = at.dataframe[1].value
    assert list(table["Budget"]) == ["search daily", "gpt-4o monthly"]
    assert list(table["Action"]) == ["block", "downgrade"]
    assert list(table["Downgrade to"]) == ["", "gpt-4o-mini"]
    assert list(table["Acting now"]) == [True, False]
    assert list(table["Limit (USD)"]) == ["0.000001000", "1000.000000000"]


def test_without_guarded_calls_or_budgets_the_page_says_so(running: RunningCollector) -> None:
    at = AppTest.from_file(APP, default_timeout=60)
    at.query_params.update({"team": "nobody"})
    at.run()
    at.switch_page(PAGE).run()
    assert not at.exception, [item.value for item in at.exception]
    assert "The guard acted on no call in this window" in texts(at.info)
    assert "No budget is enforced" in texts(at.info)
    assert "No circuit turned a call away in the last 15 minutes." in texts(at.success)


def test_open_circuits_count_only_the_last_15_minutes(running: RunningCollector) -> None:
    found = guard_client.open_circuits(running.url, None, (), NOW)
    assert found.to_dict("records") == [
        {"breaker": "openai/gpt-4o", "calls": 2, "last_seen": found["last_seen"][0]}
    ]  # fmt: skip
    assert NOW - timedelta(minutes=6) <= found["last_seen"][0].to_pydatetime() <= NOW
    assert guard_client.open_circuits(running.url, None, (), NOW + timedelta(minutes=11)).empty
