"""The Alerts page's test helpers: calls sent to a real collector, the page run by AppTest, and what it shows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import uuid4

from streamlit.testing.v1 import AppTest

from llmledger import semconv as sc
from tests.collector_harness import RunningCollector
from tests.otlp_spans import chat_attributes, request_with

APP = Path(__file__).parents[2] / "dashboard" / "app.py"
PAGE = "views/alerts.py"
PROTOBUF = {"Content-Type": "application/x-protobuf"}


def send(running: RunningCollector, count: int, **attrs: Any) -> None:
    """`count` chat calls half an hour ago (so the page has calls and a 1h window sees them), each its own call (its
    own request id: reports sharing one are merged into one row)."""
    start = datetime.now(UTC) - timedelta(minutes=30)
    spans = [chat_attributes(**{sc.TEAM: "search", sc.REQUEST_ID: f"req_{uuid4().hex}", **attrs}) for _ in range(count)]
    body = request_with(spans, start_ns=int(start.timestamp() * 1e9)).SerializeToString()
    assert running.http.post("/v1/traces", content=body, headers=PROTOBUF).status_code == 200


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
    at.button(key="alert_new_submit").click().run()
    ok(at)
    return at


def evaluate(running: RunningCollector) -> list[tuple[int, str]]:
    """One alert-engine tick now (the fixture's collector evaluates only when asked)."""
    con = running.collector.store.reader()
    try:
        return running.collector.alert_engine.evaluate_once(con, datetime.now(UTC))
    finally:
        con.close()


def stored_channels(running: RunningCollector, rule_id: int) -> list[dict[str, str]]:
    """A rule's channels as the collector holds them (real URLs: the API only ever shows them masked)."""
    con = running.collector.store.reader()
    try:
        return dict(running.collector.alert_engine.alerts.rules(con))[rule_id].channels
    finally:
        con.close()
