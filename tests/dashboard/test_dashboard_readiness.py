"""The Readiness page, run by AppTest against a real collector loaded over OTLP.

Each page test runs twice: against the collector's own readiness API ("collector"), and against a stand-in that
answers the readiness routes as the API contract says ("contract") while every other route (calls, breakdowns,
alert rules) is still the real collector's. The tests read what they expect through the same routes the page
uses, so both runs check the page against what the API said.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pandas as pd
import pyarrow as pa
import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from collector.api.auth import Tokens
from dashboard.data import alerts_client, client, readiness_client
from dashboard.parts import filters
from dashboard.views import readiness
from llmledger import semconv as sc
from tests.collector_harness import RunningCollector
from tests.otlp_spans import chat_attributes, request_with

APP = Path(__file__).parents[2] / "dashboard" / "app.py"
PAGE = "views/readiness.py"
PROTOBUF = {"Content-Type": "application/x-protobuf"}
NOW = datetime.now(UTC).replace(microsecond=0)
# (service, environment, features, client settings): checkout is configured well, search is not.
SERVICES = [
    ("checkout", "production", ["answers", "summaries"], {sc.CLIENT_MAX_RETRIES: 2, sc.CLIENT_TIMEOUT_S: 30.0}),
    ("checkout", "staging", ["answers"], {sc.CLIENT_MAX_RETRIES: 2, sc.CLIENT_TIMEOUT_S: 30.0}),
    ("search", "production", ["ranking", "nightly-digest"], {sc.CLIENT_MAX_RETRIES: 0, sc.CLIENT_TIMEOUT_S: 600.0}),
]
CATEGORIES = {
    "Error handling": ("eh.retries", "eh.timeout", "eh.error_rate", "eh.rate_limited", "eh.truncation"),
    "Security": ("sec.content_off", "sec.key_scope", "sec.end_user", "sec.collector_auth", "sec.no_secrets"),
    "Cost management": ("cost.max_tokens", "cost.budget_rule", "cost.caching", "cost.priced", "cost.batch"),
    "Monitoring": ("mon.request_ids", "mon.ttft", "mon.error_alert", "mon.latency_alert", "mon.ratelimit_alert"),
    "Testing": ("test.model_pinned", "test.non_prod_traffic", "test.error_paths", "test.load", "test.mocked"),
}
STATUS = readiness_client.STATUS_ICONS
PASS, FAIL = STATUS["pass"], STATUS["fail"]


def send(collector: RunningCollector, token: str | None = None) -> None:
    """Twenty calls per service and environment 30 hours ago, with the checklist's client signals."""
    headers = {**PROTOBUF, **({"Authorization": f"Bearer {token}"} if token else {})}
    for service, environment, features, settings in SERVICES:
        start = NOW - timedelta(hours=30)
        spans = [
            chat_attributes(
                **{
                    sc.FEATURE: features[n % len(features)],
                    sc.REQUEST_ID: f"req_{service}_{environment}_{n:02d}",
                    sc.END_USER: f"user-{n % 3}",
                    sc.GEN_AI_REQUEST_MAX_TOKENS: 512,
                    sc.CLIENT_KEY_KIND: "project",
                    sc.REQUEST_USER_SET: True,
                    **settings,
                }
            )
            for n in range(20)
        ]
        body = request_with(spans, service=service, environment=environment, start_ns=int(start.timestamp() * 1e9))
        response = collector.http.post("/v1/traces", content=body.SerializeToString(), headers=headers)
        assert response.status_code == 200, response.text


class ContractReadiness:
    """The readiness routes as the API contract describes them, in memory. Alert items pass once the real collector
    holds an enabled rule of their kind for the service; attested items once attested."""

    RULES = {
        "mon.error_alert": ("error_rate", "1h", ">", 0.05),
        "mon.latency_alert": ("latency_p95_ms", "1h", ">", 10_000),
        "mon.ratelimit_alert": ("ratelimit_headroom_requests_pct", "5m", "<", 10),
        "cost.budget_rule": ("cost", "month", ">", 500),
    }

    def __init__(self, collector: RunningCollector) -> None:
        self.collector = collector
        self.sent: list[tuple[str, str, list[tuple[str, str]], Any]] = []
        self.attested: dict[tuple[str, str], dict[str, str]] = {}
        self.batch: dict[str, list[str]] = {}
        self.bad_rule = False  # propose a rule the collector refuses (422)

    def asked(self) -> dict[str, list[list[tuple[str, str]]]]:
        """The GET parameters sent so far, by path."""
        found: dict[str, list[list[tuple[str, str]]]] = {}
        for method, path, params, _ in self.sent:
            if method == "GET":
                found.setdefault(path, []).append(params)
        return found

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        real = client.httpx2.request

        def request(method: str, url: str, **kwargs: Any) -> Any:
            path = urlsplit(url).path
            if not path.startswith(readiness_client.READINESS_PATH):
                return real(method, url, **kwargs)
            params = list(kwargs.get("params") or [])
            self.sent.append((method, path, params, kwargs.get("json")))
            status, body = self.answer(method, path, dict(params), kwargs.get("json"))
            return client.httpx2.Response(status, json=body)

        monkeypatch.setattr(client.httpx2, "request", request)

    def answer(self, method: str, path: str, params: dict[str, str], body: Any) -> tuple[int, Any]:
        if (method, path) == ("GET", readiness_client.READINESS_PATH):
            return 200, self.scorecard(params["service"], params.get("environment"), params["from"], params["to"])
        if (method, path) == ("GET", readiness_client.HISTORY_PATH):
            days = int(params["days"])
            today = NOW.date()
            points = [{"day": (today - timedelta(days=back)).isoformat(), "score": 10 + back % 5} for back in range(3)]
            return 200, {"points": points[:days]}
        if (method, path) == ("POST", readiness_client.ATTEST_PATH):
            for field in ("by", "link", "note"):  # a note is optional, but never blank
                required = field != "note" or field in body
                if required and not str(body.get(field) or "").strip():
                    return 422, {"error": "is required and must be a non-empty string", "field": field}
            if not str(body["link"]).startswith(("http://", "https://")):
                return 422, {"error": "must be an http(s) URL", "field": "link"}
            self.attested[(body["service"], body["item"])] = body
            return 201, {"id": len(self.attested), **body, "at": NOW.isoformat()}
        if path == readiness_client.BATCH_PATH:
            service = params.get("service") or body["service"]
            if method == "PUT":
                self.batch[service] = list(body["features"])
            return 200, {"service": service, "features": self.batch.get(service, [])}
        return 404, {"error": f"no route {method} {path}"}

    def item(self, service: str, item_id: str, rules: list[dict[str, Any]]) -> dict[str, Any]:
        title = item_id.split(".", 1)[1].replace("_", " ").capitalize()
        fix: dict[str, Any] = {"text": f"Fix {item_id}.", "snippet": None, "rule": None}
        evidence: dict[str, Any] = {"summary": f"{item_id}: 3 of 40 calls ($0.12)"}
        status = "pass"
        if item_id in self.RULES:
            metric, window, op, threshold = self.RULES[item_id]
            covered = any(
                rule["enabled"]
                and rule["metric"] == metric
                and service in (rule.get("filters") or {}).get("service", [])
                for rule in rules
            )
            status = "pass" if covered else "fail"
            name = f"{service}: {item_id}"
            fix["rule"] = {
                "name": name,
                "metric": "no_such_metric" if self.bad_rule else metric,
                "window": window,
                "op": op,
                "threshold": threshold,
                "filters": {"service": [service]},
                "channels": [],
            }
        elif item_id in readiness_client.ATTESTED_ITEMS:
            status = "pass" if (service, item_id) in self.attested else "unknown"
            evidence = {"summary": "not attested yet", "basis": "attested"}
            if found := self.attested.get((service, item_id)):
                evidence = {"summary": f"attested by {found['by']}", "basis": "attested", "by": found["by"],
                            "link": found["link"], "note": found.get("note")}  # fmt: skip
        elif item_id == readiness_client.BATCH_ITEM:
            status = "pass" if self.batch.get(service) else "unknown"
        elif item_id == "eh.retries" and service == "search":
            status = "fail"
            evidence = {
                "summary": "20 of 20 calls made with max_retries=0",
                "calls": 20,
                "failing_share": 1.0,
                "worst_features": [{"feature": "ranking", "calls": 10}, {"feature": "nightly-digest", "calls": 10}],
                "example_request_ids": ["req_search_production_00", "req_search_production_01"],
            }
            fix["snippet"] = "client = openai.OpenAI(max_retries=2)"
        elif item_id == "sec.collector_auth":
            status = "unknown"
        return {"id": item_id, "title": title, "status": status, "evidence": evidence, "fix": fix}

    def scorecard(self, service: str, environment: str | None, start: str, end: str) -> dict[str, Any]:
        rules = self.collector.get("/api/v1/alert-rules")["rules"]
        categories = []
        for name, ids in CATEGORIES.items():
            items = [self.item(service, item_id, rules) for item_id in ids]
            score = sum(item["status"] == "pass" for item in items)
            categories.append({"name": name, "score": score, "max": 5, "items": items})
        score = sum(category["score"] for category in categories)
        band = "production ready" if score >= 20 else "needs improvement" if score >= 15 else "not ready"
        unknown = sum(item["status"] == "unknown" for category in categories for item in category["items"])
        return {"service": service, "environment": environment, "from": start, "to": end, "score": score, "max": 25,
                "band": band, "unknown": unknown, "categories": categories}  # fmt: skip


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningCollector]:
    collector = RunningCollector(tmp_path_factory.mktemp("readiness") / "x.duckdb", "--alert-interval", "3600")
    try:
        send(collector)
        yield collector
    finally:
        collector.stop()


@pytest.fixture(params=["contract", "collector"])
def api(request: pytest.FixtureRequest, loaded: RunningCollector, monkeypatch: pytest.MonkeyPatch) -> Iterator[Api]:
    """The collector, with its readiness routes either its own or the contract's stand-in; no alert rules,
    attestations or batch features left from another test."""
    fake = None
    if request.param == "contract":
        fake = ContractReadiness(loaded)
        fake.install(monkeypatch)
    monkeypatch.setenv("LLMLEDGER_API_URL", loaded.url)
    monkeypatch.setattr(filters, "now_utc", lambda: NOW)
    for name in ("READ", "ADMIN"):
        monkeypatch.delenv(f"LLMLEDGER_{name}_TOKEN", raising=False)
        monkeypatch.delenv(f"LLMLEDGER_{name}_TOKEN_FILE", raising=False)
    st.cache_data.clear()
    yield Api(loaded, fake)
    st.cache_data.clear()
    for rule in loaded.get("/api/v1/alert-rules")["rules"]:
        loaded.http.delete(f"/api/v1/alert-rules/{rule['id']}")
    for service in ("checkout", "search"):
        client.request("PUT", loaded.url, None, readiness_client.BATCH_PATH, body={"service": service, "features": []})


class Api:
    """What the page reads, read the same way (through `client.request`), for the assertions."""

    def __init__(self, collector: RunningCollector, fake: ContractReadiness | None) -> None:
        self.collector = collector
        self.fake = fake

    def get(self, path: str, **params: str) -> Any:
        return client.request("GET", self.collector.url, None, path, list(params.items())).json()

    def scorecard(self, service: str, environment: str | None = None, days: int = 7) -> dict[str, Any]:
        params = {"service": service, **window(days)}
        if environment:
            params["environment"] = environment
        return self.get(readiness_client.READINESS_PATH, **params)


def window(days: int = 7) -> dict[str, str]:
    end = filters.now_rounded(NOW)
    return {"from": filters.iso(end - timedelta(days=days)), "to": filters.iso(end)}


def page(**query: Any) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    at.query_params.update({"range": "7d", **query})
    at.run()
    at.switch_page(PAGE).run()
    ok(at)
    return at


def ok(at: AppTest) -> None:
    assert not at.exception, [item.value for item in at.exception]


def texts(elements: Any) -> str:
    return " ".join(str(item.value) for item in elements)


def key(service: str, *parts: str, environment: str | None = None) -> str:
    return readiness_client.widget_key((service, environment), *parts)


def expander(at: AppTest, service: str, item_id: str, environment: str | None = None) -> Any:
    found = [block for block in at.expander if block.key == key(service, item_id, "item", environment=environment)]
    assert len(found) == 1, [block.label for block in at.expander]
    return found[0]


def items(scorecard: dict[str, Any]) -> list[dict[str, Any]]:
    return [item for category in scorecard["categories"] for item in category["items"]]


def card_shown(at: AppTest, api: Api, service: str) -> None:
    """The page draws `service`'s card, and only it: score, band, unknowns, each category's score and tab."""
    shown = {metric.label: metric.value for metric in at.metric}
    scorecard = api.scorecard(service)
    assert shown == {service: f"{scorecard['score']} / {scorecard['max']}"}
    badges = texts(at.markdown)
    color = readiness_client.BAND_COLORS[scorecard["band"]]
    assert f":{color}-badge[:material/verified: {scorecard['band']}]" in badges
    if scorecard["unknown"]:
        assert f"{scorecard['unknown']} unknown]" in badges
    categories = scorecard["categories"]
    assert [bar.proto.text for bar in at.get("progress")] == [
        f"{c['name']}: {c['score']}/{c['max']}" for c in categories
    ]
    assert [bar.proto.value for bar in at.get("progress")] == [100 * c["score"] // c["max"] for c in categories]
    assert [tab.label for tab in at.tabs] == [category["name"] for category in categories]
    assert {block.key.split("|")[1] for block in at.expander} == {service}


def test_a_table_of_every_service_then_the_worst_card_and_any_other_chosen(api: Api) -> None:
    at = page()
    asked = api.fake.asked() if api.fake else {}
    worst_first = sorted(("checkout", "search"), key=lambda service: api.scorecard(service)["score"])
    # Several cards: a table of their scores first, worst first; then the worst one's card in full.
    table = at.dataframe[0].value
    assert list(table["Service"]) == worst_first
    assert list(table["Score"]) == [api.scorecard(service)["score"] for service in worst_first]
    chooser = at.selectbox(key="readiness|chosen")
    assert (chooser.options, chooser.value) == (worst_first, (worst_first[0], None))
    card_shown(at, api, worst_first[0])
    if api.fake:
        assert asked[readiness_client.READINESS_PATH] == [
            [("service", service), *window().items()] for service in ("checkout", "search")
        ]
        assert [params[0] for params in asked[readiness_client.HISTORY_PATH]] == [("service", worst_first[0])]
    chooser.select_index(1).run()
    ok(at)
    card_shown(at, api, worst_first[1])
    if api.fake:
        asked = [params[0] for params in api.fake.asked()[readiness_client.HISTORY_PATH]]
        assert asked == [("service", worst_first[0]), ("service", worst_first[1])]
    assert list(at.dataframe[0].value["Service"]) == worst_first


def test_each_item_shows_its_status_title_and_evidence(api: Api) -> None:
    for service in ("checkout", "search"):
        at = page(service=service)
        for item in items(api.scorecard(service)):
            block = expander(at, service, item["id"])
            assert block.label.startswith(f"{STATUS[item['status']]} **"), block.label
            assert readiness_client.escape(item["title"]) in block.label
            summary = item["evidence"].get("summary")
            if summary:
                assert block.label.endswith(readiness_client.escape(summary))
            shown = texts(block.markdown) + " " + " ".join(str(frame.value.to_dict()) for frame in block.dataframe)
            for name, value in item["evidence"].items():
                if isinstance(value, list) and value and not isinstance(value[0], dict):
                    assert all(f"`{entry}`" in shown for entry in value), (name, shown)  # e.g. example request ids


def test_a_failing_items_fix_shows_its_snippet(api: Api) -> None:
    at = page(service="search")
    failing = [item for item in items(api.scorecard("search")) if item["status"] == "fail" and item["fix"]["snippet"]]
    assert failing  # search sends with max_retries=0 and no max_tokens: its fixes come with snippets
    for item in failing:
        block = expander(at, "search", item["id"])
        assert item["fix"]["snippet"] in texts(block.code)
        assert readiness_client.escape(item["fix"]["text"]) in texts(block.markdown)
    if api.fake:
        block = expander(at, "search", "eh.retries")
        assert "`req_search_production_00`, `req_search_production_01`" in texts(block.markdown)
        assert "Failing share: 100.00%" in texts(block.markdown)
        assert list(block.dataframe[0].value["Feature"]) == ["ranking", "nightly-digest"]


def rule_item(scorecard: dict[str, Any]) -> dict[str, Any]:
    proposed = [item for item in items(scorecard) if item["status"] != "pass" and (item["fix"] or {}).get("rule")]
    assert proposed, "no item proposes an alert rule"
    return next((item for item in proposed if item["id"] == "mon.error_alert"), proposed[0])


def test_create_the_proposed_alert_rule(api: Api) -> None:
    at = page(service="checkout")
    item = rule_item(api.scorecard("checkout"))
    rule = item["fix"]["rule"]
    block = expander(at, "checkout", item["id"])
    assert json.loads(block.code[0].value) == rule
    assert f"`{readiness_client.rule_condition(rule)}`" in texts(block.markdown)
    at.button(key=key("checkout", item["id"], "rule")).click().run()
    ok(at)
    stored = api.collector.get("/api/v1/alert-rules")["rules"]
    assert [(r["name"], r["metric"], r["filters"]) for r in stored] == [(rule["name"], rule["metric"], rule["filters"])]
    assert f"Created alert rule {rule['name']!r} (id {stored[0]['id']})" in texts(at.success)
    # The item is scored again at once: it passes, and its button is gone.
    [after] = [entry for entry in items(api.scorecard("checkout")) if entry["id"] == item["id"]]
    assert after["status"] == "pass"
    assert expander(at, "checkout", item["id"]).label.startswith(PASS)
    assert not [button for button in at.button if button.key == key("checkout", item["id"], "rule")]


def test_a_rule_made_on_the_alerts_page_is_seen_at_once(api: Api) -> None:
    at = page(service="checkout")
    item = rule_item(api.scorecard("checkout"))
    assert not expander(at, "checkout", item["id"]).label.startswith(PASS)
    alerts_client.create_rule(api.collector.url, None, item["fix"]["rule"])  # what the Alerts page's form does
    at.run()
    ok(at)
    assert expander(at, "checkout", item["id"]).label.startswith(PASS)


def test_a_refused_rule_shows_the_field_the_collector_named(api: Api) -> None:
    if api.fake is None:
        pytest.skip("only the stand-in can propose a rule the collector refuses")
    api.fake.bad_rule = True
    at = page(service="checkout")
    at.button(key=key("checkout", "mon.error_alert", "rule")).click().run()
    ok(at)
    assert texts(at.error).startswith("metric: 'no_such_metric' is not one of"), texts(at.error)
    assert api.collector.get("/api/v1/alert-rules")["rules"] == []


def attest(at: AppTest, item_id: str, service: str = "checkout", **values: str) -> AppTest:
    for name, value in values.items():
        at.text_input(key=key(service, item_id, name)).input(value)
    at.button(key=f"FormSubmitter:{key(service, item_id, 'attest')}-Record attestation").click().run()
    ok(at)
    return at


def test_attest_a_load_test(api: Api) -> None:
    at = page(service="checkout")
    link = "https://ci.example.com/load/42"
    attest(at, "test.load", by="jane@example.com", link=link, note="500 rps for an hour")
    assert "Recorded: jane@example.com attests test.load for checkout." in texts(at.success)
    [after] = [item for item in items(api.scorecard("checkout")) if item["id"] == "test.load"]
    assert after["status"] == "pass"
    assert expander(at, "checkout", "test.load").label.startswith(f"{PASS} **")
    assert "(attested)" in expander(at, "checkout", "test.load").label
    assert f"- Link: [{readiness_client.escape(link)}]({link})" in texts(expander(at, "checkout", "test.load").markdown)
    if api.fake:
        assert api.fake.attested[("checkout", "test.load")] == {
            "service": "checkout", "item": "test.load", "by": "jane@example.com", "link": link,
            "note": "500 rps for an hour",
        }  # fmt: skip


def test_an_attestation_without_its_author_shows_the_field(api: Api) -> None:
    [before] = [item for item in items(api.scorecard("search")) if item["id"] == "test.mocked"]
    at = attest(page(service="search"), "test.mocked", "search", by="", link="https://ci.example.com/tests/7")
    error = texts(at.error)
    assert error.startswith("by: "), error
    [after] = [item for item in items(api.scorecard("search")) if item["id"] == "test.mocked"]
    assert after["status"] == before["status"]


def test_an_attestation_needs_no_note(api: Api) -> None:
    at = attest(page(service="checkout"), "test.mocked", by="ci-bot", link="https://ci.example.com/tests/7")
    assert not at.error, texts(at.error)
    assert "Recorded: ci-bot attests test.mocked for checkout." in texts(at.success)
    [after] = [item for item in items(api.scorecard("checkout")) if item["id"] == "test.mocked"]
    assert after["status"] == "pass"


def test_mark_batch_eligible_features(api: Api) -> None:
    at = page(service="search")
    chooser = at.multiselect(key=key("search", "batch"))
    assert chooser.options == ["nightly-digest", "ranking"]  # the service's own features, not checkout's
    chooser.set_value(["nightly-digest"])
    at.button(key=f"FormSubmitter:{key('search', 'batch_form')}-Save batch-eligible features").click().run()
    ok(at)
    assert "Saved 1 batch-eligible feature(s) for search." in texts(at.success)
    saved = api.get(readiness_client.BATCH_PATH, service="search")
    assert saved["features"] == ["nightly-digest"]
    assert at.multiselect(key=key("search", "batch")).value == ["nightly-digest"]


def test_the_sidebar_narrows_the_cards_and_the_window(api: Api) -> None:
    first, last = (NOW - timedelta(days=2)).date(), NOW.date()
    at = page(range="Custom", dates=[first.isoformat(), last.isoformat()], service="checkout", environment="staging")
    asked = api.fake.asked() if api.fake else {}
    assert [metric.label for metric in at.metric] == ["checkout · staging"]
    start, end = first.isoformat() + "T00:00:00Z", (last + timedelta(days=1)).isoformat() + "T00:00:00Z"
    scorecard = api.get(readiness_client.READINESS_PATH, service="checkout", environment="staging", to=end,
                        **{"from": start})  # fmt: skip
    assert at.metric[0].value == f"{scorecard['score']} / {scorecard['max']}"
    assert not at.dataframe or "Service" not in at.dataframe[0].value  # one card: no overview table
    if api.fake:
        assert asked[readiness_client.READINESS_PATH] == [
            [("service", "checkout"), ("from", start), ("to", end), ("environment", "staging")]
        ]
        assert asked[readiness_client.HISTORY_PATH] == [
            [("service", "checkout"), ("days", "7"), ("environment", "staging")]
        ]


def test_the_score_over_time_is_charted(api: Api) -> None:
    at = page(service="checkout")
    points = api.get(readiness_client.HISTORY_PATH, service="checkout", days="7")["points"]
    charts = at.get("vega_lite_chart")
    if not points:
        assert not charts
        assert "No score history" in texts(at.caption)
        return
    [chart] = charts
    line, bands = json.loads(chart.proto.spec)["layer"]
    maximum = api.scorecard("checkout")["max"]
    assert line["encoding"]["y"]["scale"]["domain"] == [0, maximum]
    assert bands["mark"]["type"] == "rule"
    lines = {data.name: data for data in chart.proto.datasets}[bands["data"]["name"]]
    assert list(pa.ipc.open_stream(lines.data.data).read_all().to_pandas()["score"]) == list(
        readiness.band_lines(maximum)
    )
    tables = {data.name: pa.ipc.open_stream(data.data.data).read_all().to_pandas() for data in chart.proto.datasets}
    drawn = tables[line["data"]["name"]]
    days = [f"{day:%Y-%m-%d}" for day in drawn["day"]]
    assert sorted(zip(days, drawn["score"], strict=True)) == sorted((p["day"], p["score"]) for p in points)
    assert "Daily score over the last 7 UTC days" in texts(at.caption)


def test_changes_need_the_admin_token(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With the read token the page shows everything and says why a change was refused; the admin token makes it."""
    tokens = Tokens(ingest="ingest-tok-5d1e", read="read-tok-77ab", admin="admin-tok-e3c0")
    admin = {"Authorization": f"Bearer {tokens.admin}"}
    collector = RunningCollector(tmp_path / "x.duckdb", tokens=tokens)
    try:
        send(collector, tokens.ingest)
        monkeypatch.setenv("LLMLEDGER_API_URL", collector.url)
        monkeypatch.setattr(filters, "now_utc", lambda: NOW)
        monkeypatch.setenv("LLMLEDGER_READ_TOKEN", tokens.read)
        for name in ("LLMLEDGER_READ_TOKEN_FILE", "LLMLEDGER_ADMIN_TOKEN", "LLMLEDGER_ADMIN_TOKEN_FILE"):
            monkeypatch.delenv(name, raising=False)
        st.cache_data.clear()
        at = page(service="checkout")
        assert [metric.label for metric in at.metric] == ["checkout"]
        at.button(key=key("checkout", "mon.error_alert", "rule")).click().run()
        attest(at, "test.load", by="jane", link="https://ci.example.com/load/1")
        refusals = [item.value for item in at.error]
        assert len(refusals) == 2, refusals
        assert all("refused the dashboard's token (403)" in text for text in refusals), refusals
        assert collector.http.get("/api/v1/alert-rules", headers=admin).json()["rules"] == []

        monkeypatch.setenv("LLMLEDGER_ADMIN_TOKEN", tokens.admin)
        at = page(service="checkout")
        at.button(key=key("checkout", "mon.error_alert", "rule")).click().run()
        assert not at.error, texts(at.error)
        assert len(collector.http.get("/api/v1/alert-rules", headers=admin).json()["rules"]) == 1
    finally:
        st.cache_data.clear()
        collector.stop()


def test_a_window_without_calls_says_so(api: Api) -> None:
    at = page(range="1h")  # the calls are 30 hours old
    assert "No service has sent calls in this time range yet" in texts(at.info)
    assert not at.metric


def test_an_empty_collector_says_how_to_send_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    empty = RunningCollector(tmp_path / "empty.duckdb")
    try:
        monkeypatch.setenv("LLMLEDGER_API_URL", empty.url)
        st.cache_data.clear()
        at = page()
        assert "No LLM calls have reached this collector" in texts(at.info)
        assert not at.metric
    finally:
        empty.stop()
        st.cache_data.clear()


def test_a_collector_without_the_readiness_api_gets_a_message(
    loaded: RunningCollector, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = client.httpx2.request

    def older(method: str, url: str, **kwargs: Any) -> Any:
        if urlsplit(url).path.startswith(readiness_client.READINESS_PATH):
            return client.httpx2.Response(404, text="Not Found")
        return real(method, url, **kwargs)

    monkeypatch.setattr(client.httpx2, "request", older)
    monkeypatch.setenv("LLMLEDGER_API_URL", loaded.url)
    st.cache_data.clear()
    at = page()
    assert texts(at.warning).count("/api/v1/readiness") == 1, texts(at.warning)
    assert not at.metric
    assert not at.error


@pytest.mark.parametrize(
    ("chosen", "cards"),
    [
        ((), [("a", None), ("b", None)]),
        ((("service", "b"),), [("b", None)]),
        ((("environment", "prod"), ("environment", "dev")), [("a", "prod"), ("a", "dev"), ("b", "prod"), ("b", "dev")]),
        ((("team", "x"), ("service", "c")), [("c", None)]),
    ],
)
def test_which_cards_are_shown(chosen: tuple[tuple[str, str], ...], cards: list[tuple[str, str | None]]) -> None:
    assert readiness_client.cards(chosen, ["a", "b"]) == cards


def test_evidence_is_sorted_into_facts_lists_and_tables() -> None:
    parts = readiness_client.evidence_parts(
        {
            "summary": "not shown twice",
            "basis": "observed",
            "minimum": 0.95,
            "rules": [],
            "calls": 12345,
            "cached_share": 0.125,
            "p95_ms": 1234.5,
            "redacted": False,
            "limit": None,
            "example_request_ids": ["req_1", "req_2"],
            "worst_models": [{"model": "gpt-4o", "share": 0.5}],
            "thresholds": {"max_share": 0.02},
        }
    )
    assert parts.facts == [
        ("Minimum", "95.00%"),
        ("Rules", "none"),
        ("Calls", "12,345"),
        ("Cached share", "12.50%"),
        ("P95 ms", "1,234.5"),
        ("Redacted", "no"),
        ("Limit", "—"),
        ("Thresholds — Max share", "2.00%"),
    ]
    assert parts.lists == [("Example request ids", ["req_1", "req_2"])]
    [(name, frame)] = parts.tables
    assert name == "Worst models"
    pd.testing.assert_frame_equal(frame, pd.DataFrame([{"Model": "gpt-4o", "Share": "50.00%"}]))
    assert not readiness_client.evidence_parts({"summary": "only"})


def test_a_link_in_the_evidence_is_a_link() -> None:
    assert (
        readiness_client.fact_markdown("https://ci.example.com/run/42")
        == r"[https\://ci.example.com/run/42](https://ci.example.com/run/42)"
    )
    assert readiness_client.fact_markdown("see https://x.example") == r"see https\://x.example"
    assert readiness_client.fact_markdown("https://x.example/a)(b") == r"https\://x.example/a)(b"


def test_text_from_the_api_is_shown_literally() -> None:
    label = readiness_client.item_label(
        {"id": "cost.priced", "title": "All calls *priced*", "status": "fail", "evidence": {"summary": "$3 :red[x]"}}
    )
    assert label == FAIL + r" **All calls \*priced\*** — \$3 \:red\[x\]"
    attested = readiness_client.item_label({"id": "test.load", "status": "pass", "title": "Load"})
    assert attested == f"{PASS} **Load** (attested)"
    said = {"id": "test.load", "status": "pass", "title": "Load tested (attested)", "evidence": {"basis": "attested"}}
    assert readiness_client.item_label(said) == f"{PASS} **Load tested (attested)**"
    assert (
        readiness_client.item_label({**said, "status": "unknown"}) == f"{STATUS['unknown']} **Load tested (attested)**"
    )


@pytest.mark.parametrize(
    ("snippet", "language"),
    [
        ("client = OpenAI(max_retries=3)", "python"),
        ("curl -X POST $LLMLEDGER_API/api/v1/readiness/attest", "bash"),
        ("OTEL_RESOURCE_ATTRIBUTES=deployment.environment.name=staging", "bash"),
        ('[[models]]\nmodel = "my-model"', "toml"),
    ],
)
def test_snippets_are_highlighted_in_their_language(snippet: str, language: str) -> None:
    assert readiness_client.snippet_language(snippet) == language


def test_a_proposed_rule_in_one_line() -> None:
    rule = {"name": "x", "metric": "error_rate", "window": "1h", "op": ">", "threshold": 0.05, "for": "5m",
            "filters": {"service": ["checkout"], "environment": "production"}}  # fmt: skip
    assert (
        readiness_client.rule_condition(rule)
        == "error_rate > 0.05 over 1h for 5m (service=checkout; environment=production)"
    )
    assert readiness_client.rule_condition({**rule, "for": None, "filters": {}}) == "error_rate > 0.05 over 1h"


@pytest.mark.parametrize(("days", "expected"), [(1, 7), (7, 7), (30, 30), (90, 90), (400, 365)])
def test_history_covers_the_window_and_at_least_a_week(days: int, expected: int) -> None:
    assert readiness_client.history_days(NOW - timedelta(days=days), NOW) == expected
