"""The Alerts page, run by AppTest against a real collector: list, create (and the API's 422), delete, firing."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from llmledger import semconv as sc
from tests.collector_harness import RunningCollector
from tests.otlp_spans import chat_attributes, request_with

APP = Path(__file__).parents[1] / "dashboard" / "app.py"
PAGE = "views/alerts.py"
PROTOBUF = {"Content-Type": "application/x-protobuf"}


def send(running: RunningCollector, count: int, **attrs: Any) -> None:
    """`count` chat calls half an hour ago (so the page has calls and a 1h window sees them)."""
    start = datetime.now(UTC) - timedelta(minutes=30)
    spans = [chat_attributes(**{sc.TEAM: "search", sc.REQUEST_ID: f"req_{i}", **attrs}) for i in range(count)]
    body = request_with(spans, start_ns=int(start.timestamp() * 1e9)).SerializeToString()
    assert running.http.post("/v1/traces", content=body, headers=PROTOBUF).status_code == 200


@pytest.fixture
def running(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[RunningCollector]:
    """A collector that evaluates alerts only when asked, holding a few successful calls."""
    collector = RunningCollector(tmp_path / "x.duckdb", "--alert-interval", "3600")
    monkeypatch.setenv("LLMLEDGER_API_URL", collector.url)
    monkeypatch.delenv("LLMLEDGER_READ_TOKEN", raising=False)
    monkeypatch.delenv("LLMLEDGER_READ_TOKEN_FILE", raising=False)
    st.cache_data.clear()
    try:
        send(collector, 2)
        yield collector
    finally:
        st.cache_data.clear()
        collector.stop()


def page() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    at.switch_page(PAGE).run()
    ok(at)
    return at


def ok(at: AppTest) -> None:
    assert not at.exception, [item.value for item in at.exception]


def texts(elements: Any) -> str:
    return " ".join(str(item.value) for item in elements)


def rule_body(**changes: Any) -> dict[str, Any]:
    body = {"name": "errors", "metric": "errors", "window": "1h", "op": ">", "threshold": 0}
    return {**body, **changes}


def submit(at: AppTest, **values: str) -> AppTest:
    """Fill the create form's text fields (by key suffix) and submit it."""
    for name, value in values.items():
        at.text_input(key=f"alert_new_{name}").input(value)
    at.button(key="FormSubmitter:alert_new-Create rule").click().run()
    ok(at)
    return at


def test_empty_list(running: RunningCollector) -> None:
    at = page()
    assert "No alert rules yet" in texts(at.info)
    assert "No state changes yet" in texts(at.caption)
    assert not at.error


def test_create_rule_through_the_form(running: RunningCollector) -> None:
    at = page()
    at.selectbox(key="alert_new_metric").select("error_rate")
    at.selectbox(key="alert_new_window").select("24h")
    at.selectbox(key="alert_new_op").select(">=")
    at = submit(at, name="Search errors", threshold="0.25", filter_team="search, discovery", **{"for": "5m"})
    assert not at.error, texts(at.error)
    assert "Created rule 'Search errors'" in texts(at.success)
    [stored] = running.get("/api/v1/alert-rules")["rules"]
    assert {
        key: stored[key] for key in ("name", "metric", "window", "op", "threshold", "for", "filters", "enabled")
    } == {
        "name": "Search errors",
        "metric": "error_rate",
        "window": "24h",
        "op": ">=",
        "threshold": 0.25,
        "for": "300s",
        "filters": {"team": ["search", "discovery"]},
        "enabled": True,
    }
    listed = at.dataframe[0].value
    assert list(listed["Rule"]) == ["Search errors"]
    assert list(listed["Condition"]) == ["error_rate >= 0.25 over 24h for 300s"]


@pytest.mark.parametrize(
    ("values", "field"),
    [({"name": "x", "threshold": "high"}, "threshold"), ({"name": "", "threshold": "1"}, "name")],
)
def test_invalid_rule_shows_the_apis_message(running: RunningCollector, values: dict[str, str], field: str) -> None:
    at = submit(page(), **values)
    shown = texts(at.error)
    assert shown.startswith(f"{field}: "), shown
    response = running.http.post(
        "/api/v1/alert-rules",
        json=rule_body(**{**values, "threshold": values["threshold"] if field == "threshold" else 1}),
    )
    assert response.status_code == 422
    assert response.json()["error"] in shown
    assert running.get("/api/v1/alert-rules")["rules"] == []


def test_disable_and_delete(running: RunningCollector) -> None:
    rule_id = running.http.post("/api/v1/alert-rules", json=rule_body(name="quiet")).json()["id"]
    at = page()
    assert list(at.dataframe[0].value["Rule"]) == ["quiet"]
    at.button(key="alert_toggle").click().run()
    ok(at)
    assert running.get(f"/api/v1/alert-rules/{rule_id}")["enabled"] is False
    assert list(at.dataframe[0].value["Enabled"]) == [False]
    assert at.button(key="alert_toggle").label == "Enable"
    at.button(key="alert_delete").click().run()
    ok(at)
    assert running.get("/api/v1/alert-rules")["rules"] == []
    assert "No alert rules yet" in texts(at.info)


def test_rule_with_a_channel_needs_its_url_reentered(running: RunningCollector) -> None:
    channel = {"type": "webhook", "url": "http://127.0.0.1:9/hooks/secret"}
    rule_id = running.http.post("/api/v1/alert-rules", json=rule_body(channels=[channel])).json()["id"]
    at = page()
    at.button(key="alert_toggle").click().run()
    ok(at)
    assert "Re-enter every channel URL" in texts(at.error)
    assert running.get(f"/api/v1/alert-rules/{rule_id}")["enabled"] is True
    at.text_area(key=f"alert_urls_{rule_id}").input("http://127.0.0.1:9/hooks/new")
    at.button(key="alert_toggle").click().run()
    ok(at)
    shown = running.get(f"/api/v1/alert-rules/{rule_id}")
    assert shown["enabled"] is False
    assert shown["channels"] == [{"type": "webhook", "url": "http://127.0.0.1/•••"}]


def test_firing_rule_is_first_and_its_event_listed(running: RunningCollector) -> None:
    send(running, 3, **{sc.ERROR_TYPE: "RateLimitError", sc.HTTP_RESPONSE_STATUS_CODE: 429})
    running.http.post("/api/v1/alert-rules", json=rule_body(name="calm", metric="requests", threshold=1000))
    fire_id = running.http.post("/api/v1/alert-rules", json=rule_body(name="boom")).json()["id"]
    con = running.collector.store.reader()
    try:
        fired = running.collector.alert_engine.evaluate_once(con, datetime.now(UTC))
    finally:
        con.close()
    assert fired == [(fire_id, "firing")]
    at = page()
    assert "Firing (1): boom" in texts(at.error)
    rules, events = at.dataframe[0].value, at.dataframe[1].value
    assert list(rules["Rule"]) == ["boom", "calm"]
    assert list(rules["State"]) == ["🔴 firing", "🟢 ok"]
    assert list(rules["Value"]) == [3.0, 5.0]
    assert list(events["Rule"]) == ["boom"]
    assert list(events["To"]) == ["🔴 firing"]


def test_overview_shows_firing_alerts_and_budgets(running: RunningCollector) -> None:
    send(running, 3, **{sc.ERROR_TYPE: "RateLimitError", sc.HTTP_RESPONSE_STATUS_CODE: 429})
    running.http.post("/api/v1/alert-rules", json=rule_body(name="boom"))
    budget = rule_body(name="monthly", metric="cost", window="month", op=">=", threshold=1000)
    running.http.post("/api/v1/alert-rules", json=budget)
    con = running.collector.store.reader()
    try:
        running.collector.alert_engine.evaluate_once(con, datetime.now(UTC))
    finally:
        con.close()
    spent = running.get("/api/v1/alert-rules")["rules"][1]["value"]
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    ok(at)
    assert "Firing (1): **boom**" in texts(at.error)
    (bar,) = at.get("progress")
    assert "Budget monthly: spend this month" in bar.proto.text
    assert "of $1,000.00" in bar.proto.text
    assert spent > 0


def test_preview_draws_the_draft_and_when_it_would_fire(running: RunningCollector) -> None:
    send(running, 3, **{sc.ERROR_TYPE: "RateLimitError", sc.HTTP_RESPONSE_STATUS_CODE: 429})
    at = page()
    at.text_input(key="alert_new_name").input("draft")
    at.selectbox(key="alert_new_metric").select("errors")
    at.selectbox(key="alert_new_window").select("1h")
    at.text_input(key="alert_new_threshold").input("0")
    at.button(key="FormSubmitter:alert_new-Preview over the last 7 days").click().run()
    ok(at)
    assert "would have fired 1 time(s)" in texts(at.markdown)
    assert running.get("/api/v1/alert-rules")["rules"] == []


def test_send_test_notification_button(running: RunningCollector) -> None:
    channel = {"type": "webhook", "url": "http://127.0.0.1:9/hooks/secret"}
    running.http.post("/api/v1/alert-rules", json=rule_body(name="noisy", channels=[channel]))
    at = page()
    at.button(key="alert_test").click().run()
    ok(at)
    assert "Test notification sent to 1 channel(s)" in texts(at.success)


def test_rules_can_be_set_up_before_any_call(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    empty = RunningCollector(tmp_path / "empty.duckdb", "--alert-interval", "3600")
    monkeypatch.setenv("LLMLEDGER_API_URL", empty.url)
    st.cache_data.clear()
    try:
        at = page()
        assert "No alert rules yet" in texts(at.info)
        submit(at, name="first", threshold="10")
        assert [rule["name"] for rule in empty.get("/api/v1/alert-rules")["rules"]] == ["first"]
    finally:
        st.cache_data.clear()
        empty.stop()
