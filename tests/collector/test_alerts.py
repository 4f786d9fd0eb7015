"""Alert rules: validation, the API, and the evaluator's state machine against a real collector."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from collector.alerts.engine import AlertEngine, Step, next_state
from collector.alerts.rules import RuleError, parse_rule
from llmledger import semconv as sc
from tests.collector_harness import RunningCollector
from tests.otlp_spans import chat_attributes, request_with

PROTOBUF = {"content-type": "application/x-protobuf"}
NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
RULE = {
    "name": "errors on search",
    "metric": "error_rate",
    "window": "1h",
    "op": ">",
    "threshold": 0.1,
    "filters": {"team": ["search"]},
}


class WebhookSink:
    """A loopback webhook receiver that answers with the statuses it is given, then 200."""

    def __init__(self, statuses: list[int] | None = None) -> None:
        self.received: list[dict] = []
        self.statuses = list(statuses or [])
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["content-length"])))
                status = sink.statuses.pop(0) if sink.statuses else 200
                if status == 200:
                    sink.received.append(body)
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/secret-token-123"

    def wait_for(self, count: int, timeout: float = 10) -> list[dict]:
        deadline = time.monotonic() + timeout
        while len(self.received) < count and time.monotonic() < deadline:
            time.sleep(0.02)
        return self.received

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def collector(tmp_path: Path) -> Iterator[RunningCollector]:
    running = RunningCollector(tmp_path / "alerts.duckdb", "--alert-interval", "3600")
    running.collector.notifier.base_delay_s = 0.01
    yield running
    running.stop()


@pytest.fixture
def webhook() -> Iterator[WebhookSink]:
    sink = WebhookSink()
    yield sink
    sink.close()


def send(collector: RunningCollector, count: int, at: datetime, **attrs: object) -> None:
    spans = [chat_attributes(**{sc.TEAM: "search", sc.REQUEST_ID: f"req_{at:%H%M}_{i}", **attrs}) for i in range(count)]
    start_ns = int((at - timedelta(minutes=30)).timestamp() * 1e9)
    body = request_with(spans, start_ns=start_ns).SerializeToString()
    assert collector.http.post("/v1/traces", content=body, headers=PROTOBUF).status_code == 200


def evaluate(collector: RunningCollector, now: datetime) -> list[tuple[int, str]]:
    con = collector.collector.store.reader()
    try:
        return collector.collector.alert_engine.evaluate_once(con, now)
    finally:
        con.close()


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"name": ""}, "name"),
        ({"metric": "vibes"}, "metric"),
        ({"window": "7d"}, "window"),
        ({"op": "=="}, "op"),
        ({"threshold": "high"}, "threshold"),
        ({"threshold": float("nan")}, "threshold"),
        ({"for": "soon"}, "for"),
        ({"filters": {"colour": ["red"]}}, "filters"),
        ({"filters": {"team": []}}, "filters"),
        ({"channels": [{"type": "pager", "url": "https://x"}]}, "channels"),
        ({"channels": [{"type": "slack", "url": "ftp://x"}]}, "channels"),
        ({"enabled": "yes"}, "enabled"),
        ({"min_requests": -1}, "min_requests"),
        ({"metric": "cost_forecast_month", "window": "1h"}, "window"),
        ({"surprise": 1}, "surprise"),
    ],
)
def test_invalid_rules_name_the_field(change: dict, field: str) -> None:
    with pytest.raises(RuleError) as caught:
        parse_rule({**RULE, **change})
    assert caught.value.field == field


def test_state_machine() -> None:
    later = NOW + timedelta(minutes=5)
    c = "critical"
    assert next_state("ok", None, None, c, 0, NOW) == Step("firing", c, NOW, "firing")
    assert next_state("ok", None, None, c, 300, NOW) == Step("pending", c, NOW, "pending")
    assert next_state("pending", c, NOW, c, 300, NOW + timedelta(minutes=4)) == Step("pending", c, NOW, None)
    assert next_state("pending", c, NOW, c, 300, later) == Step("firing", c, later, "firing")
    assert next_state("pending", c, NOW, None, 300, later) == Step("ok", None, later, "ok")
    assert next_state("firing", c, NOW, c, 300, later) == Step("firing", c, NOW, None)
    assert next_state("firing", c, NOW, None, 300, later) == Step("ok", None, later, "resolved")
    assert next_state("ok", None, NOW, None, 0, later) == Step("ok", None, NOW, None)
    # A level change while firing is one event, firing → firing, never a resolved/firing pair.
    assert next_state("firing", "warning", NOW, c, 300, later) == Step("firing", c, later, "firing")
    assert next_state("firing", c, NOW, "warning", 300, later) == Step("firing", "warning", later, "firing")
    assert next_state("pending", "warning", NOW, c, 300, NOW + timedelta(minutes=1)) == Step("pending", c, NOW, None)


def test_rules_api(collector: RunningCollector, webhook: WebhookSink) -> None:
    created = collector.http.post(
        "/api/v1/alert-rules", json={**RULE, "channels": [{"type": "webhook", "url": webhook.url}]}
    )
    assert created.status_code == 201
    rule_id = created.json()["id"]
    (shown,) = collector.get("/api/v1/alert-rules")["rules"]
    assert shown["id"] == rule_id
    assert shown["state"] == "ok"
    assert shown["channels"] == [{"type": "webhook", "url": "http://127.0.0.1/•••1"}]
    assert "secret-token" not in collector.http.get(f"/api/v1/alert-rules/{rule_id}").text

    updated = collector.http.put(f"/api/v1/alert-rules/{rule_id}", json={**RULE, "threshold": 0.5, "for": "10m"})
    assert updated.status_code == 200
    assert collector.get(f"/api/v1/alert-rules/{rule_id}")["threshold"] == 0.5
    assert collector.get(f"/api/v1/alert-rules/{rule_id}")["for"] == "600s"

    invalid = collector.http.post("/api/v1/alert-rules", json={**RULE, "op": "=="})
    assert invalid.status_code == 422
    assert invalid.json()["field"] == "op"
    assert (
        collector.http.post(
            "/api/v1/alert-rules", content=b"{", headers={"content-type": "application/json"}
        ).status_code
        == 400
    )
    assert collector.http.put("/api/v1/alert-rules/999", json=RULE).status_code == 404
    assert collector.http.delete(f"/api/v1/alert-rules/{rule_id}").status_code == 204
    assert collector.http.delete(f"/api/v1/alert-rules/{rule_id}").status_code == 404
    assert collector.get("/api/v1/alert-rules")["rules"] == []


def test_masked_urls_sent_back_keep_the_stored_ones(collector: RunningCollector) -> None:
    """GET, change, PUT: masked URLs stand for the stored channel at their position; a mask is never stored."""
    secrets = [
        {"type": "webhook", "url": "http://127.0.0.1:9/hooks/one-secret"},
        {"type": "webhook", "url": "http://127.0.0.1:9/hooks/two-secret"},
    ]
    rule_id = collector.http.post("/api/v1/alert-rules", json={**RULE, "channels": secrets}).json()["id"]
    shown = collector.get(f"/api/v1/alert-rules/{rule_id}")
    assert [channel["url"] for channel in shown["channels"]] == ["http://127.0.0.1/•••1", "http://127.0.0.1/•••2"]
    # Keep the second, drop the first, add one: PUT what GET showed.
    new = {"type": "slack", "url": "https://hooks.slack.test/services/new"}
    answer = collector.http.put(
        f"/api/v1/alert-rules/{rule_id}", json={**RULE, "channels": [shown["channels"][1], new]}
    )
    assert answer.status_code == 200
    con = collector.collector.store.reader()
    try:
        assert dict(collector.collector.alert_engine.alerts.rules(con))[rule_id].channels == [secrets[1], new]
    finally:
        con.close()
    for wrong in (
        {"type": "webhook", "url": "http://127.0.0.1/•••2"},  # position 2 is now the Slack channel
        {"type": "webhook", "url": "http://127.0.0.1/•••7"},
        {"type": "webhook", "url": "http://evil.test/•••1"},
    ):
        refused = collector.http.put(f"/api/v1/alert-rules/{rule_id}", json={**RULE, "channels": [wrong]})
        assert refused.status_code == 422
        assert refused.json()["field"] == "channels"
        assert "masked URL" in refused.json()["error"]
    created = collector.http.post("/api/v1/alert-rules", json={**RULE, "channels": [shown["channels"][0]]})
    assert created.status_code == 422


def test_fires_once_and_resolves(collector: RunningCollector) -> None:
    rule_id = collector.http.post("/api/v1/alert-rules", json={**RULE, "min_requests": 5}).json()["id"]
    send(collector, 3, NOW, **{sc.ERROR_TYPE: "RateLimitError"})
    assert evaluate(collector, NOW) == []  # 3 calls: below min_requests, nobody is paged
    send(collector, 3, NOW + timedelta(minutes=1), **{sc.ERROR_TYPE: "RateLimitError"})
    assert evaluate(collector, NOW + timedelta(minutes=2)) == [(rule_id, "firing")]
    assert evaluate(collector, NOW + timedelta(minutes=3)) == []  # still firing: no second event
    shown = collector.get(f"/api/v1/alert-rules/{rule_id}")
    assert (shown["state"], shown["value"]) == ("firing", 1.0)
    assert evaluate(collector, NOW + timedelta(hours=2)) == [(rule_id, "resolved")]  # the errors left the window
    events = collector.get("/api/v1/alert-events")["events"]
    assert [(event["from_state"], event["to_state"]) for event in events] == [("firing", "resolved"), ("ok", "firing")]
    assert events[1]["value"] == 1.0
    assert events[1]["threshold"] == 0.1


def test_for_duration_holds_before_firing(collector: RunningCollector) -> None:
    rule_id = collector.http.post("/api/v1/alert-rules", json={**RULE, "for": "5m"}).json()["id"]
    send(collector, 4, NOW, **{sc.ERROR_TYPE: "InternalServerError"})
    assert evaluate(collector, NOW) == [(rule_id, "pending")]
    assert evaluate(collector, NOW + timedelta(minutes=2)) == []
    assert evaluate(collector, NOW + timedelta(minutes=5)) == [(rule_id, "firing")]


def test_cost_budget_and_forecast(collector: RunningCollector) -> None:
    send(collector, 10, NOW)
    cost = collector.get("/api/v1/summary")["cost_usd"]
    day_rule = {**RULE, "metric": "cost", "window": "day", "op": ">=", "threshold": float(cost), "filters": {}}
    day_id = collector.http.post("/api/v1/alert-rules", json=day_rule).json()["id"]
    forecast_rule = {**day_rule, "metric": "cost_forecast_month", "window": "month", "threshold": float(cost) * 3}
    forecast_id = collector.http.post("/api/v1/alert-rules", json=forecast_rule).json()["id"]
    changes = dict(evaluate(collector, NOW))
    assert changes[day_id] == "firing"
    # 10 March noon is 9.5/31 of the month: spend so far x 31/9.5 is more than 3 x spend so far.
    assert changes[forecast_id] == "firing"
    forecast = collector.get(f"/api/v1/alert-rules/{forecast_id}")["value"]
    assert forecast == pytest.approx(float(cost) * 31 / 9.5, rel=1e-6)


def test_rate_limit_headroom(collector: RunningCollector) -> None:
    headroom = {**RULE, "metric": "ratelimit_headroom_requests_pct", "op": "<", "threshold": 10}
    rule_id = collector.http.post("/api/v1/alert-rules", json=headroom).json()["id"]
    send(collector, 2, NOW, **{sc.RATELIMIT_LIMIT_REQUESTS: 1000, sc.RATELIMIT_REMAINING_REQUESTS: 50})
    assert evaluate(collector, NOW) == [(rule_id, "firing")]
    assert collector.get(f"/api/v1/alert-rules/{rule_id}")["value"] == pytest.approx(5.0)


def test_bad_event_parameters(collector: RunningCollector) -> None:
    assert collector.http.get("/api/v1/alert-events", params={"limit": "0"}).json()["parameter"] == "limit"
    assert collector.http.get("/api/v1/alert-events", params={"rule_id": "x"}).json()["parameter"] == "rule_id"


def test_state_survives_a_restart(tmp_path: Path) -> None:
    db = tmp_path / "restart.duckdb"
    first = RunningCollector(db, "--alert-interval", "3600")
    try:
        rule_id = first.http.post("/api/v1/alert-rules", json=RULE).json()["id"]
        send(first, 4, NOW, **{sc.ERROR_TYPE: "RateLimitError"})
        assert evaluate(first, NOW) == [(rule_id, "firing")]
    finally:
        first.stop()
    second = RunningCollector(db, "--alert-interval", "3600")
    try:
        assert evaluate(second, NOW + timedelta(minutes=1)) == []  # still firing: no second "firing"
        assert second.get(f"/api/v1/alert-rules/{rule_id}")["state"] == "firing"
        assert len(second.get("/api/v1/alert-events")["events"]) == 1
    finally:
        second.stop()


def test_notifies_once_on_firing_and_once_on_resolve(collector: RunningCollector, webhook: WebhookSink) -> None:
    channels = [{"type": "webhook", "url": webhook.url}, {"type": "slack", "url": webhook.url}]
    rule_id = collector.http.post("/api/v1/alert-rules", json={**RULE, "channels": channels}).json()["id"]
    send(collector, 4, NOW, **{sc.ERROR_TYPE: "RateLimitError"})
    evaluate(collector, NOW)
    evaluate(collector, NOW + timedelta(minutes=1))  # still firing: nothing more is sent
    firing = webhook.wait_for(2)
    assert len(firing) == 2
    generic = next(body for body in firing if "rule" in body)
    assert generic == {
        "rule": "errors on search",
        "rule_id": rule_id,
        "state": "firing",
        "severity": "critical",
        "group": None,
        "title": "errors on search",
        "metric": "error_rate",
        "value": 1.0,
        "op": ">",
        "threshold": 0.1,
        "groups_left_out": 0,
        "window": "1h",
        "filters": {"team": ["search"]},
        "time": NOW.isoformat(),
        "link": "http://127.0.0.1:8501/alerts?team=search",
    }
    slack = next(body for body in firing if "text" in body)
    assert "FIRING" in slack["text"]
    assert "errors on search" in slack["text"]
    evaluate(collector, NOW + timedelta(hours=2))
    assert [body.get("state") for body in webhook.wait_for(4) if "state" in body] == ["firing", "resolved"]
    time.sleep(0.2)
    assert len(webhook.received) == 4


def test_failing_webhook_is_retried_and_recorded(collector: RunningCollector) -> None:
    flaky = WebhookSink(statuses=[500, 503])
    dead = {"type": "webhook", "url": "http://127.0.0.1:9/hook"}  # nothing listens on the discard port
    try:
        other = collector.http.post("/api/v1/alert-rules", json={**RULE, "name": "other", "channels": [dead]}).json()
        rule = {**RULE, "channels": [{"type": "webhook", "url": flaky.url}]}
        rule_id = collector.http.post("/api/v1/alert-rules", json=rule).json()["id"]
        send(collector, 4, NOW, **{sc.ERROR_TYPE: "RateLimitError"})
        changes = evaluate(collector, NOW)
        assert sorted(changes) == sorted([(other["id"], "firing"), (rule_id, "firing")])  # a dead channel stops nothing
        assert len(flaky.wait_for(1)) == 1
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            attempts = collector.get("/api/v1/notification-attempts")["attempts"]
            if sum(1 for a in attempts if a["rule_id"] == other["id"]) == 5:
                break
            time.sleep(0.05)
        mine = sorted((a["attempt"], a["ok"], a["http_status"]) for a in attempts if a["rule_id"] == rule_id)
        assert mine == [(1, False, 500), (2, False, 503), (3, True, 200)]
        failed = [a for a in attempts if a["rule_id"] == other["id"]]
        assert len(failed) == 5
        assert not any(a["ok"] for a in failed)
        assert all(a["error"] == "ConnectError" for a in failed)
        shown = json.dumps(attempts)
        assert "secret-token" not in shown  # only hosts, never the secret URLs
        assert "/hook" not in shown
    finally:
        flaky.close()


def test_preview_replays_the_last_week(collector: RunningCollector) -> None:
    now = datetime.now(tz=UTC)
    send(collector, 4, now - timedelta(hours=30), **{sc.ERROR_TYPE: "RateLimitError"})
    send(collector, 6, now - timedelta(hours=3))
    answer = collector.http.post("/api/v1/alert-rules/preview", json=RULE)
    assert answer.status_code == 200
    preview = answer.json()
    assert len(preview["points"]) in (169, 170)  # hourly over 7 days, then now
    assert len(preview["fired_at"]) == 1  # the errors 30 hours ago, and only once
    fired = datetime.fromisoformat(preview["fired_at"][0])
    assert timedelta(hours=29) <= now - fired <= timedelta(hours=31)
    assert collector.get("/api/v1/alert-rules")["rules"] == []  # a preview stores nothing
    invalid = collector.http.post("/api/v1/alert-rules/preview", json={**RULE, "window": "1y"})
    assert (invalid.status_code, invalid.json()["field"]) == (422, "window")


def test_send_test_notification(collector: RunningCollector, webhook: WebhookSink) -> None:
    rule_id = collector.http.post(
        "/api/v1/alert-rules", json={**RULE, "channels": [{"type": "webhook", "url": webhook.url}]}
    ).json()["id"]
    answer = collector.http.post(f"/api/v1/alert-rules/{rule_id}/test")
    assert (answer.status_code, answer.json()) == (202, {"channels": 1})
    (body,) = webhook.wait_for(1)
    assert (body["state"], body["rule"]) == ("test", "errors on search")
    assert collector.get("/api/v1/alert-events")["events"] == []  # a test is not a state change
    silent = collector.http.post("/api/v1/alert-rules", json=RULE).json()["id"]
    assert collector.http.post(f"/api/v1/alert-rules/{silent}/test").status_code == 422
    assert collector.http.post("/api/v1/alert-rules/999/test").status_code == 404


@pytest.mark.parametrize(
    ("metric", "op", "threshold", "expected"),
    [
        ("requests", ">=", 6, 6.0),
        ("errors", ">", 1, 2.0),
        ("latency_p95_ms", ">", 200, 250.0),  # every call of request_with lasts 250 ms
        ("latency_p99_ms", ">=", 250, 250.0),
        ("ttft_p95_ms", ">", 100, pytest.approx(400.0)),
        ("cost", ">", 0, None),
    ],
)
def test_each_metric(collector: RunningCollector, metric: str, op: str, threshold: float, expected: object) -> None:
    send(collector, 4, NOW, **{sc.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK: 0.4})
    send(collector, 2, NOW + timedelta(minutes=1), **{sc.ERROR_TYPE: "APITimeoutError"})
    rule = {**RULE, "metric": metric, "op": op, "threshold": threshold}
    rule_id = collector.http.post("/api/v1/alert-rules", json=rule).json()["id"]
    assert evaluate(collector, NOW + timedelta(minutes=2)) == [(rule_id, "firing")]
    value = collector.get(f"/api/v1/alert-rules/{rule_id}")["value"]
    if expected is None:
        assert value == pytest.approx(float(collector.get("/api/v1/summary")["cost_usd"]))
    else:
        assert value == expected


def test_an_event_recorded_but_never_delivered_is_delivered_once(
    collector: RunningCollector, webhook: WebhookSink
) -> None:
    """As when the collector (or a lake's leader) died between recording a transition and notifying it."""
    from collector.alerts.engine import RESEND_AFTER

    rule = {**RULE, "channels": [{"type": "webhook", "url": webhook.url}]}
    rule_id = collector.http.post("/api/v1/alert-rules", json=rule).json()["id"]
    send(collector, 4, NOW, **{sc.ERROR_TYPE: "RateLimitError"})  # so the rule stays firing at each evaluation
    engine = collector.collector.alert_engine
    (_, parsed), *_ = engine.alerts.rules(collector.collector.store.reader())
    # What the dead process left: the transition and its claim, no notice sent.
    event_id = engine.alerts.record(rule_id, parsed, "ok", "firing", NOW, 0.5, 4, NOW, "firing", claimed_by="dead:1")
    assert event_id is not None

    evaluate(collector, NOW + RESEND_AFTER / 2)  # its first attempt may still be under way: too early to resend
    time.sleep(0.2)
    assert webhook.received == []
    # Two collectors (this one and another engine on the same database) look at once: one takes it over.
    other = AlertEngine(collector.collector.store, 3600, engine.notifier)
    con = collector.collector.store.reader()
    try:
        assert other.send_undelivered(con, NOW + RESEND_AFTER) == [event_id]
        assert engine.send_undelivered(con, NOW + RESEND_AFTER) == []
    finally:
        con.close()
    (delivered,) = webhook.wait_for(1)
    assert (delivered["state"], delivered["rule_id"], delivered["time"]) == ("firing", rule_id, NOW.isoformat())
    evaluate(collector, NOW + 2 * RESEND_AFTER)
    time.sleep(0.2)
    assert len(webhook.received) == 1
    attempts = collector.get("/api/v1/notification-attempts")["attempts"]
    assert [(a["event_id"], a["ok"]) for a in attempts] == [(event_id, True)]


def test_a_transition_from_a_stale_state_is_not_recorded(collector: RunningCollector) -> None:
    """Two evaluators (an old and a new leader) that both saw 'ok': only the first records 'firing'."""
    rule_id = collector.http.post("/api/v1/alert-rules", json=RULE).json()["id"]
    alerts = collector.collector.alert_engine.alerts
    (_, rule), *_ = alerts.rules(collector.collector.store.reader())
    assert alerts.record(rule_id, rule, "ok", "firing", NOW, 0.5, 4, NOW, "firing") is not None
    assert alerts.record(rule_id, rule, "ok", "firing", NOW, 0.5, 4, NOW, "firing") is None
    events = collector.get("/api/v1/alert-events")["events"]
    assert [(e["from_state"], e["to_state"]) for e in events] == [("ok", "firing")]

    # Edited (here: disabled) while a tick was judging the old definition: the edit wins, nothing is recorded.
    assert collector.http.put(f"/api/v1/alert-rules/{rule_id}", json={**RULE, "enabled": False}).status_code == 200
    assert alerts.record(rule_id, rule, "ok", "firing", NOW, 0.5, 4, NOW, "firing") is None
    assert len(collector.get("/api/v1/alert-events")["events"]) == 1


def test_a_notice_whose_claim_was_taken_over_is_not_sent(collector: RunningCollector, webhook: WebhookSink) -> None:
    """A collector whose delivery queue backed up past the take-over time leaves the event to the one that took it."""
    from collector.alerts.notify import Notice

    rule_id = collector.http.post(
        "/api/v1/alert-rules", json={**RULE, "channels": [{"type": "webhook", "url": webhook.url}]}
    ).json()["id"]
    engine = collector.collector.alert_engine
    (_, rule), *_ = engine.alerts.rules(collector.collector.store.reader())
    event_id = engine.alerts.record(rule_id, rule, "ok", "firing", NOW, 0.5, 4, NOW, "firing", claimed_by="slow:1")
    con = collector.collector.store.reader()
    try:
        (event,) = engine.alerts.undelivered(con, NOW, NOW)
    finally:
        con.close()
    assert engine.alerts.take_over(event, "leader:2", NOW)
    assert not engine.alerts.take_over(event, "leader:3", NOW)  # the claim changed: only one takes it
    notifier = collector.collector.notifier
    notifier.send(Notice(event_id, rule_id, rule, "firing", 0.5, NOW, "slow:1"))
    time.sleep(0.3)
    assert webhook.received == []
    notifier.send(Notice(event_id, rule_id, rule, "firing", 0.5, NOW, "leader:2"))
    (delivered,) = webhook.wait_for(1)
    assert delivered["state"] == "firing"
