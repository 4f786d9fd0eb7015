"""The Digests page, run by AppTest against a real collector: create a weekly digest with a Slack channel from the
form, preview its report and chart, send it now (a loopback Slack receiver gets it), and a 422 shown beside the form."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from llmledger import semconv as sc
from tests.collector.receivers import Receiver
from tests.collector_harness import RunningCollector
from tests.otlp_spans import chat_attributes, request_with

APP = Path(__file__).parents[2] / "dashboard" / "app.py"
PAGE = "views/alerts.py"  # digests are a section of the Alerts page
PROTOBUF = {"Content-Type": "application/x-protobuf"}


@pytest.fixture
def running(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[RunningCollector]:
    collector = RunningCollector(tmp_path / "x.duckdb", "--alert-interval", "3600")
    monkeypatch.setenv("LLMLEDGER_API_URL", collector.url)
    monkeypatch.delenv("LLMLEDGER_READ_TOKEN", raising=False)
    monkeypatch.delenv("LLMLEDGER_READ_TOKEN_FILE", raising=False)
    st.cache_data.clear()
    start = datetime.now(UTC) - timedelta(days=7)  # in last week or this one: the page needs no calls anyway
    spans = [chat_attributes(**{sc.TEAM: "search", sc.FEATURE: "chat"}) for _ in range(3)]
    body = request_with(spans, start_ns=int(start.timestamp() * 1e9)).SerializeToString()
    assert collector.http.post("/v1/traces", content=body, headers=PROTOBUF).status_code == 200
    try:
        yield collector
    finally:
        st.cache_data.clear()
        collector.stop()


@pytest.fixture
def slack() -> Iterator[Receiver]:
    receiver = Receiver(lambda request: [] if set(request.json()) == {"text"} else ["not a Slack body"])
    yield receiver
    receiver.close()


def ok(at: AppTest) -> None:
    assert not at.exception, [item.value for item in at.exception]


def texts(elements: Any) -> str:
    return " ".join(str(item.value) for item in elements)


def page() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    at.switch_page(PAGE).run()
    ok(at)
    return at


def table(at: AppTest, column: str) -> Any:
    """The Alerts page's table that has `column` (the page shows rules, events and more beside the digests)."""
    [found] = [frame.value for frame in at.dataframe if column in frame.value.columns]
    return found


def fill(at: AppTest, **values: str) -> None:
    for name, value in values.items():
        at.text_input(key=f"digest_{name}").input(value)


def test_create_a_weekly_digest_preview_it_and_send_it_now(running: RunningCollector, slack: Receiver) -> None:
    at = page()
    assert "No digests yet" in texts(at.info)
    at.selectbox(key="digest_schedule").select("weekly")
    at.selectbox(key="digest_channel_type").select("slack")
    fill(at, name="Search weekly", filter_team="search", channel_url=f"{slack.base}/services/T0/B0/secret")
    at.button(key="FormSubmitter:digest_new-Preview the report").click().run()
    ok(at)
    assert not at.error, texts(at.error)
    assert "REPORT: Search weekly" in texts(at.code)
    assert "Weekly report for team=search" in texts(at.code)
    [image] = at.get("image")
    assert image.proto.imgs[0].caption.startswith("Daily cost, ")
    assert running.get("/api/v1/digests") == {"digests": []}  # a preview stores nothing
    at.button(key="FormSubmitter:digest_new-Create digest").click().run()
    ok(at)
    assert "Created digest 'Search weekly'" in texts(at.success)
    [stored] = running.get("/api/v1/digests")["digests"]
    assert {key: stored[key] for key in ("name", "schedule", "send_hour", "filters", "enabled")} == {
        "name": "Search weekly", "schedule": "weekly", "send_hour": 8, "filters": {"team": ["search"]},
        "enabled": True}  # fmt: skip
    [channel] = stored["channels"]
    assert (channel["type"], channel["url"].endswith("/•••1"), "secret" in channel["url"]) == ("slack", True, False)
    assert list(table(at, "Digest")["Digest"]) == ["Search weekly"]
    at.button(key="digest_send_now").click().run()
    ok(at)
    assert "Sending the report for" in texts(at.success)
    [posted] = slack.wait_for(1)
    assert posted.json()["text"].startswith(":bar_chart: REPORT *Search weekly*")
    st.cache_data.clear()
    at.run()
    deliveries = table(at, "Why")
    assert list(deliveries["Why"]) == ["send now"]
    assert list(deliveries["Channel"]) == ["slack"]


def test_a_bad_digest_shows_the_apis_field(running: RunningCollector) -> None:
    at = page()
    at.selectbox(key="digest_channel_type").select("slack")
    fill(at, name="Bad", channel_url="not a url")
    at.button(key="FormSubmitter:digest_new-Create digest").click().run()
    ok(at)
    assert texts(at.error).startswith("channels: channel 0: url must be an http(s) URL")
    assert running.get("/api/v1/digests") == {"digests": []}
