"""Alerting a team can run on, against a real collector: per-group rules, severities, anomaly and no-data rules,
silences and acknowledgements, and the 422s naming the field at fault."""

from __future__ import annotations

import random
import time
from datetime import UTC, datetime, timedelta

import pytest

from collector.alerts.readings import read
from collector.alerts.rules import RuleError, parse_rule
from llmledger import semconv as sc
from tests.collector_harness import RunningCollector
from tests.otlp_spans import chat_attributes, request_with

from .test_alerts import PROTOBUF, WebhookSink, evaluate
from .test_alerts import collector as collector  # the fixtures
from .test_alerts import webhook as webhook

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
BUSY = {"name": "busy", "metric": "requests", "window": "1h", "op": ">", "threshold": 2}


def send(collector: RunningCollector, count: int, at: datetime, *, service: str = "checkout", **attrs: object) -> None:
    """`count` calls starting at `at`, a second apart."""
    tag = f"{service}_{at:%d%H%M%S}_{'_'.join(map(str, attrs.values()))}"
    spans = [chat_attributes(**{sc.REQUEST_ID: f"req_{tag}_{i}", **attrs}) for i in range(count)]
    body = request_with(spans, service=service, start_ns=int(at.timestamp() * 1e9)).SerializeToString()
    assert collector.http.post("/v1/traces", content=body, headers=PROTOBUF).status_code == 200


def create(collector: RunningCollector, rule: dict) -> int:
    answer = collector.http.post("/api/v1/alert-rules", json=rule)
    assert answer.status_code == 201, answer.text
    return answer.json()["id"]


def events(collector: RunningCollector) -> list[dict]:
    return list(reversed(collector.get("/api/v1/alert-events")["events"]))


def settled(webhook: WebhookSink, count: int) -> list[dict]:
    received = webhook.wait_for(count)
    time.sleep(0.3)  # nothing more arrives
    assert len(webhook.received) == count
    return received


def test_each_group_fires_and_resolves_on_its_own_with_one_notification_each(
    collector: RunningCollector, webhook: WebhookSink
) -> None:
    channels = [{"type": "webhook", "url": webhook.url}]
    rule_id = create(collector, {**BUSY, "group_by": "team", "channels": channels})
    send(collector, 4, NOW - timedelta(minutes=30), **{sc.TEAM: "search"})
    send(collector, 5, NOW - timedelta(minutes=30), **{sc.TEAM: "ads"})
    send(collector, 1, NOW - timedelta(minutes=30), **{sc.TEAM: "docs"})  # under the threshold
    assert evaluate(collector, NOW) == [(rule_id, "firing"), (rule_id, "firing")]
    assert evaluate(collector, NOW + timedelta(minutes=1)) == []  # still firing: nothing new
    firing = settled(webhook, 2)
    assert sorted((body["title"], body["group"]["team"], body["value"]) for body in firing) == [
        ("busy [team=ads]", "ads", 5.0),
        ("busy [team=search]", "search", 4.0),
    ]
    shown = collector.get(f"/api/v1/alert-rules/{rule_id}")
    assert (shown["state"], shown["group_by"], shown["groups_measured"], shown["groups_left_out"]) == (
        "firing", "team", 3, 0,
    )  # fmt: skip
    assert sorted((g["group"], g["state"], g["value"]) for g in shown["groups"]) == [
        ("ads", "firing", 5.0),
        ("search", "firing", 4.0),
    ]
    # The search team keeps calling: only ads resolves.
    send(collector, 3, NOW + timedelta(minutes=40), **{sc.TEAM: "search"})
    assert evaluate(collector, NOW + timedelta(minutes=45)) == [(rule_id, "resolved")]
    assert evaluate(collector, NOW + timedelta(hours=3)) == [(rule_id, "resolved")]
    received = settled(webhook, 4)
    assert sorted((body["state"], body["group"]["team"]) for body in received[2:]) == [
        ("resolved", "ads"),
        ("resolved", "search"),
    ]
    assert [(e["group"], e["from_state"], e["to_state"]) for e in events(collector)][2:] == [
        ({"team": "ads"}, "firing", "resolved"),
        ({"team": "search"}, "firing", "resolved"),
    ]
    assert collector.get(f"/api/v1/alert-rules/{rule_id}")["groups"] == []  # quiet groups keep no state


def test_the_group_cap_keeps_the_top_groups_and_says_how_many_it_left_out(
    collector: RunningCollector, webhook: WebhookSink
) -> None:
    channels = [{"type": "webhook", "url": webhook.url}]
    rule_id = create(collector, {**BUSY, "group_by": "team", "max_groups": 2, "channels": channels})
    for team, count in (("a", 3), ("b", 9), ("c", 6), ("d", 4)):
        send(collector, count, NOW - timedelta(minutes=30), **{sc.TEAM: team})
    assert len(evaluate(collector, NOW)) == 2
    firing = settled(webhook, 2)
    assert sorted(body["group"]["team"] for body in firing) == ["b", "c"]  # the two busiest
    assert {body["groups_left_out"] for body in firing} == {2}
    shown = collector.get(f"/api/v1/alert-rules/{rule_id}")
    assert (shown["max_groups"], shown["groups_measured"], shown["groups_left_out"]) == (2, 4, 2)
    assert {e["groups_left_out"] for e in events(collector)} == {2}


def test_a_rule_escalates_and_de_escalates_without_resolving_in_between(
    collector: RunningCollector, webhook: WebhookSink
) -> None:
    rule = {**BUSY, "threshold": 5, "warning_threshold": 2, "channels": [{"type": "webhook", "url": webhook.url}]}
    rule_id = create(collector, rule)
    send(collector, 3, NOW - timedelta(minutes=30))
    assert evaluate(collector, NOW) == [(rule_id, "firing")]  # 3 calls: warning
    assert collector.get(f"/api/v1/alert-rules/{rule_id}")["severity"] == "warning"
    webhook.wait_for(1)  # (each delivered before the next, so they arrive in order)
    send(collector, 4, NOW + timedelta(minutes=10))
    assert evaluate(collector, NOW + timedelta(minutes=20)) == [(rule_id, "firing")]  # 7 calls: critical
    assert evaluate(collector, NOW + timedelta(minutes=25)) == []
    webhook.wait_for(2)
    assert evaluate(collector, NOW + timedelta(minutes=35)) == [(rule_id, "firing")]  # the 3 left: 4, warning
    webhook.wait_for(3)
    assert evaluate(collector, NOW + timedelta(minutes=75)) == [(rule_id, "resolved")]
    assert [(e["from_state"], e["to_state"], e["from_severity"], e["severity"], e["threshold"])
            for e in events(collector)] == [
        ("ok", "firing", None, "warning", 2.0),
        ("firing", "firing", "warning", "critical", 5.0),
        ("firing", "firing", "critical", "warning", 2.0),
        ("firing", "resolved", "warning", "warning", 2.0),
    ]  # fmt: skip
    received = settled(webhook, 4)
    assert [(body["state"], body["severity"], body["threshold"]) for body in received] == [
        ("firing", "warning", 2.0),
        ("firing", "critical", 5.0),
        ("firing", "warning", 2.0),
        ("resolved", "warning", 2.0),
    ]


def test_no_data_fires_for_a_service_that_stopped_and_only_for_one_seen_before(
    collector: RunningCollector, webhook: WebhookSink
) -> None:
    channels = [{"type": "webhook", "url": webhook.url}]
    stopped = create(collector, {"name": "checkout silent", "kind": "no_data", "window": "30m", "channels": channels,
                                 "filters": {"service": "checkout", "environment": "production"}})  # fmt: skip
    never = create(collector, {"name": "never called", "kind": "no_data", "window": "30m",
                               "filters": {"service": "never-called"}})  # fmt: skip
    per_service = create(collector, {"name": "a service stopped", "kind": "no_data", "window": "30m",
                                     "group_by": "service"})  # fmt: skip
    send(collector, 3, NOW - timedelta(minutes=5))
    send(collector, 3, NOW + timedelta(minutes=20), service="billing")
    assert evaluate(collector, NOW) == []
    changes = evaluate(collector, NOW + timedelta(minutes=40))  # checkout's last call was 45 minutes before
    assert sorted(changes) == [(stopped, "firing"), (per_service, "firing")]
    assert never not in {rule_id for rule_id, _ in changes}
    groups = collector.get(f"/api/v1/alert-rules/{per_service}")["groups"]
    assert [(g["group"], g["state"]) for g in groups] == [("checkout", "firing")]
    (firing,) = settled(webhook, 1)
    assert (firing["title"], firing["value"]) == ("checkout silent", 0.0)
    send(collector, 1, NOW + timedelta(minutes=50))
    # Checkout is back; billing's last call is now 35 minutes old: each group on its own.
    changes = evaluate(collector, NOW + timedelta(minutes=55))
    assert sorted(changes) == [(stopped, "resolved"), (per_service, "firing"), (per_service, "resolved")]
    groups = collector.get(f"/api/v1/alert-rules/{per_service}")["groups"]
    assert [(g["group"], g["state"]) for g in groups] == [("billing", "firing")]
    assert collector.get(f"/api/v1/alert-rules/{never}")["state"] == "ok"


def _weekly_pattern(collector: RunningCollector, end: datetime, spike_at: datetime) -> None:
    """Five weeks of hourly calls up to `end` with a weekly pattern (busy working hours, quiet nights and weekends,
    a little week-to-week noise), and one hour of four times the usual at `spike_at`."""
    hours = 5 * 168
    first = end - hours * timedelta(hours=1)
    counts = []
    for hour in range(hours):
        at = first + hour * timedelta(hours=1)
        usual = 12 if at.weekday() < 5 and 9 <= at.hour < 18 else 3
        counts.append(usual * 4 if at == spike_at else usual + (hour // 168 + hour) % 3 - 1)
    with collector.collector.store.transaction() as con:
        con.execute(
            "INSERT INTO llm_calls (trace_id, span_id, start_time, duration_ms, service, environment, team, status, "
            "cost_usd, request_model, source_dialect) "
            "SELECT printf('%032x', h * 1000 + k), printf('%016x', h * 1000 + k), "
            "?::TIMESTAMPTZ + to_minutes(h * 60 + k), 250, 'checkout', 'production', 'search', 'ok', 0.001, "
            "'gpt-4o-mini', 'llmledger' "
            "FROM (SELECT unnest(range(0, ?)) AS h, unnest(?::INTEGER[]) AS c), range(0, 60) AS m(k) WHERE k < c",
            [first, hours, counts],
        )


def _quiet_sunday_hour(end: datetime) -> datetime:
    """The latest Sunday hour from 04:00 to 20:00 UTC at least three hours before `end`: within the last week (four
    weeks of history behind it) and after 24 quiet hours, which both baselines need to see a spike. A spike at a
    fixed distance from now fell, some hours of the week, right after a working day's busy hours, where the rolling
    median's band is wide enough to hold it."""
    at = end - timedelta(hours=3)
    while not (at.weekday() == 6 and 4 <= at.hour <= 20):
        at -= timedelta(hours=1)
    return at


def test_an_anomaly_fires_once_at_the_spike_of_a_weekly_pattern(collector: RunningCollector) -> None:
    end = datetime.now(tz=UTC).replace(minute=0, second=0, microsecond=0)
    spike_at = _quiet_sunday_hour(end)
    _weekly_pattern(collector, end, spike_at)
    rule = {"name": "unusual traffic", "kind": "anomaly", "metric": "requests", "sensitivity": 4,
            "filters": {"service": "checkout"}}  # fmt: skip
    preview = collector.http.post("/api/v1/alert-rules/preview", json=rule).json()
    assert preview["fired_at"] == [(spike_at + timedelta(hours=1)).isoformat()]  # the hour ending after the spike
    at_spike = next(p for p in preview["points"] if p["time"] == (spike_at + timedelta(hours=1)).isoformat())
    assert at_spike["value"] > at_spike["upper"] > at_spike["lower"] >= 0
    banded = [p for p in preview["points"] if p["upper"] is not None]
    assert len(banded) >= 168  # every hourly step has a band (4 weeks of history behind each)
    assert sum(p["value"] > p["upper"] for p in banded) == 1

    rolling = collector.http.post("/api/v1/alert-rules/preview", json={**rule, "baseline": "rolling_median"}).json()
    assert (spike_at + timedelta(hours=1)).isoformat() in rolling["fired_at"]

    # The engine, live: fires at the spike's end, once, and resolves when the last hour is usual again.
    rule_id = create(collector, rule)
    assert evaluate(collector, spike_at) == []
    assert evaluate(collector, spike_at + timedelta(hours=1)) == [(rule_id, "firing")]
    assert evaluate(collector, spike_at + timedelta(hours=2)) == [(rule_id, "resolved")]
    (fired, _) = events(collector)
    assert fired["value"] == at_spike["value"] == 12.0  # four times a quiet hour's 3
    assert fired["threshold"] == pytest.approx(at_spike["upper"])


def test_silences_record_but_do_not_send_and_expire(collector: RunningCollector, webhook: WebhookSink) -> None:
    base = datetime.now(tz=UTC)
    channels = [{"type": "webhook", "url": webhook.url}]
    rule_id = create(collector, {**BUSY, "group_by": "team", "channels": channels})
    silence = {"filters": {"team": ["search"]}, "ends_at": (base + timedelta(hours=1)).isoformat(),
               "created_by": "ana@example.com", "reason": "planned migration of the search index"}  # fmt: skip
    answer = collector.http.post("/api/v1/silences", json=silence)
    assert answer.status_code == 201, answer.text
    silence_id = answer.json()["id"]
    send(collector, 4, base - timedelta(minutes=30), **{sc.TEAM: "search"})
    send(collector, 4, base - timedelta(minutes=30), **{sc.TEAM: "ads"})
    assert len(evaluate(collector, base)) == 2  # both recorded
    (sent,) = settled(webhook, 1)
    assert sent["group"] == {"team": "ads"}  # only the unmuted one is sent
    recorded = {e["group"]["team"]: e for e in events(collector)}
    assert (recorded["search"]["silenced"], recorded["search"]["silence_id"]) == (True, silence_id)
    assert recorded["ads"]["silenced"] is False
    # Its end is muted too (the channel never heard it began), even once the silence is over.
    assert len(evaluate(collector, base + timedelta(hours=2))) == 2
    (_, resolved) = settled(webhook, 2)
    assert resolved["group"] == {"team": "ads"}
    # Expired: a new firing of the same group is sent.
    send(collector, 4, base + timedelta(hours=2, minutes=30), **{sc.TEAM: "search"})
    assert evaluate(collector, base + timedelta(hours=3)) == [(rule_id, "firing")]
    assert settled(webhook, 3)[2]["group"] == {"team": "search"}
    (shown,) = collector.get("/api/v1/silences")["silences"]
    assert (shown["id"], shown["created_by"], shown["active"]) == (silence_id, "ana@example.com", True)
    assert collector.http.delete(f"/api/v1/silences/{silence_id}").status_code == 204
    assert collector.http.delete(f"/api/v1/silences/{silence_id}").status_code == 404
    assert collector.get("/api/v1/silences")["silences"] == []


def test_a_silence_of_one_rule_mutes_it_until_it_ends(collector: RunningCollector, webhook: WebhookSink) -> None:
    base = datetime.now(tz=UTC)
    rule_id = create(collector, {**BUSY, "channels": [{"type": "webhook", "url": webhook.url}]})
    silence = {"rule_id": rule_id, "ends_at": (base + timedelta(minutes=30)).isoformat(), "created_by": "ops",
               "reason": "deploy"}  # fmt: skip
    assert collector.http.post("/api/v1/silences", json=silence).status_code == 201
    send(collector, 4, base - timedelta(minutes=20))
    assert evaluate(collector, base) == [(rule_id, "firing")]
    assert evaluate(collector, base + timedelta(hours=2)) == [(rule_id, "resolved")]
    assert [e["silenced"] for e in events(collector)] == [True, True]
    send(collector, 4, base + timedelta(hours=2, minutes=10))
    assert evaluate(collector, base + timedelta(hours=2, minutes=20)) == [(rule_id, "firing")]
    (sent,) = settled(webhook, 1)
    assert sent["state"] == "firing"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"created_by": ""}, "created_by"),
        ({"reason": None}, "reason"),
        ({"ends_at": "2020-01-01T00:00:00Z"}, "ends_at"),
        ({"ends_at": "soon"}, "ends_at"),
        ({"filters": {}}, "filters"),
        ({"filters": {"colour": "red"}}, "filters"),
        ({"group": "search"}, "group"),
        ({"rule_id": "one"}, "rule_id"),
        ({"until": "x"}, "until"),
    ],
)
def test_bad_silences_name_the_field(collector: RunningCollector, change: dict, field: str) -> None:
    silence = {"filters": {"team": "search"}, "ends_at": "2100-01-01T00:00:00Z", "created_by": "ops", "reason": "x"}
    answer = collector.http.post("/api/v1/silences", json={**silence, **change})
    assert (answer.status_code, answer.json()["field"]) == (422, field)
    unknown_rule = {**silence, "rule_id": 99, "filters": {}}
    assert collector.http.post("/api/v1/silences", json=unknown_rule).status_code == 404


def test_acknowledging_a_firing_alert(collector: RunningCollector) -> None:
    rule_id = create(collector, BUSY)
    send(collector, 4, NOW - timedelta(minutes=30))
    evaluate(collector, NOW)
    (fired,) = events(collector)
    answer = collector.http.post(f"/api/v1/alert-events/{fired['id']}/ack", json={"by": "ana@example.com"})
    assert answer.status_code == 200, answer.text
    assert answer.json()["acked_by"] == "ana@example.com"
    again = collector.http.post(f"/api/v1/alert-events/{fired['id']}/ack", json={"by": "bo"}).json()
    assert again["acked_by"] == "ana@example.com"  # the first acknowledgement stands
    shown = collector.get(f"/api/v1/alert-rules/{rule_id}")
    assert (shown["state"], shown["acked_by"]) == ("firing", "ana@example.com")
    assert events(collector)[0]["acked_at"] is not None
    evaluate(collector, NOW + timedelta(hours=2))
    resolved = events(collector)[1]
    assert collector.http.post(f"/api/v1/alert-events/{resolved['id']}/ack", json={"by": "x"}).status_code == 409
    assert collector.http.post("/api/v1/alert-events/999/ack", json={"by": "x"}).status_code == 404
    missing = collector.http.post(f"/api/v1/alert-events/{fired['id']}/ack", json={})
    assert (missing.status_code, missing.json()["field"]) == (422, "by")
    assert collector.get(f"/api/v1/alert-rules/{rule_id}")["acked_by"] is None


def test_a_grouped_preview_replays_its_top_groups(collector: RunningCollector) -> None:
    now = datetime.now(tz=UTC)
    send(collector, 4, now - timedelta(hours=30), **{sc.TEAM: "search"})
    send(collector, 1, now - timedelta(hours=30), **{sc.TEAM: "ads"})
    send(collector, 2, now - timedelta(hours=5), **{sc.TEAM: "docs"})
    answer = collector.http.post("/api/v1/alert-rules/preview", json={**BUSY, "group_by": "team", "max_groups": 2})
    assert answer.status_code == 200, answer.text
    preview = answer.json()
    assert (preview["group_by"], preview["groups_left_out"]) == ("team", 1)
    assert [group["group"] for group in preview["groups"]] == ["search", "docs"]
    search = preview["groups"][0]
    assert len(search["fired_at"]) == 1
    assert timedelta(hours=29) <= now - datetime.fromisoformat(search["fired_at"][0]) <= timedelta(hours=31)
    assert preview["groups"][1]["fired_at"] == []
    assert max(p["value"] or 0 for p in search["points"]) == 4.0


def _calls_of_nine_days(collector: RunningCollector, end: datetime) -> None:
    """Nine days of calls before `end`, every eleventh hour empty, three teams: log-normal durations (half rounded
    to tens, so with ties; a few 0, tiny or huge), a time to first token on two calls in three, one error in ten,
    costs to the nano-dollar with one call in twenty unpriced, and rate-limit headroom."""
    rng = random.Random(18)
    calls = []
    while len(calls) < 6000:
        at = end - timedelta(days=9) * rng.random()
        if int(at.timestamp() // 3600) % 11 == 0:
            continue
        duration = rng.lognormvariate(7, 1)
        if rng.random() < 0.5:
            duration = round(duration, -1)
        if rng.random() < 0.02:
            duration = rng.choice([0.0, 4e-4, 2e7])
        ttft = None if rng.random() < 1 / 3 else rng.uniform(50, 900)
        cost = None if rng.random() < 0.05 else f"{rng.uniform(0, 0.05):.9f}"
        status = "error" if rng.random() < 0.1 else "ok"
        calls.append((at, duration, ttft, rng.choice(["search", "docs", "ads"]), status, cost, rng.randrange(10_000)))
    with collector.collector.store.transaction() as con:
        con.executemany(
            "INSERT INTO llm_calls (trace_id, span_id, start_time, duration_ms, ttft_ms, service, environment, team, "
            "status, cost_usd, input_tokens, output_tokens, ratelimit_limit_requests, ratelimit_remaining_requests, "
            "request_model, source_dialect) "
            "VALUES (?, ?, ?, ?, ?, 'checkout', 'production', ?, ?, ?, 100, 20, 10000, ?, 'gpt-4o-mini', 'llmledger')",
            [(f"{i:032x}", f"{i:016x}", *call) for i, call in enumerate(calls)],
        )


@pytest.mark.parametrize(
    "rule",
    [
        {"metric": "latency_p95_ms", "window": "24h", "group_by": "team"},
        {"metric": "latency_p99_ms", "window": "day"},
        {"metric": "ttft_p95_ms", "window": "month", "group_by": "team"},
        {"metric": "latency_p95_ms", "window": "1h", "group_by": "team"},
        {"metric": "latency_p99_ms", "window": "5m"},
        {"metric": "cost", "window": "24h", "group_by": "team"},
        {"metric": "cost_forecast_month", "window": "month"},
        {"metric": "requests", "window": "day", "group_by": "team"},
        {"metric": "errors", "window": "1h"},
        {"metric": "error_rate", "window": "5m", "group_by": "team"},
        {"metric": "unpriced_requests", "window": "24h"},
        {"metric": "ratelimit_headroom_requests_pct", "window": "24h", "op": "<"},
    ],
    ids=lambda rule: f"{rule['metric']}-{rule['window']}{'-by-team' if 'group_by' in rule else ''}",
)
def test_the_preview_is_what_the_engine_measures_at_each_step(collector: RunningCollector, rule: dict) -> None:
    """Every threshold metric's preview, summed from buckets or (a percentile over many hours: 24h, a day, a month)
    merged from hourly counts, equals the engine's own measurement of each step's window, to the last bit."""
    _calls_of_nine_days(collector, datetime.now(tz=UTC))
    rule = {"name": "watched", "op": ">", "threshold": 3000, **rule}
    answer = collector.http.post("/api/v1/alert-rules/preview", json=rule)
    assert answer.status_code == 200, answer.text
    preview = answer.json()
    grouped = "group_by" in rule
    series = {group["group"]: group["points"] for group in preview["groups"]} if grouped else {"": preview["points"]}
    con = collector.collector.store.reader()
    known = 0
    for group, points in series.items():
        for point in points:
            measured = read(con, parse_rule(rule), datetime.fromisoformat(point["time"])).get(group)
            expected = (measured.value, measured.requests) if measured else (None, 0)
            assert (point["value"], point["requests"]) == expected, (group, point["time"])
            known += point["value"] is not None
    assert known > 100  # the steps had calls and values to compare


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"group_by": "colour"}, "group_by"),
        ({"max_groups": 0}, "max_groups"),
        ({"max_groups": True}, "max_groups"),
        ({"warning_threshold": 5}, "warning_threshold"),  # above a '>' threshold of 2
        ({"warning_threshold": 2}, "warning_threshold"),
        ({"warning_threshold": "low"}, "warning_threshold"),
        ({"kind": "vibes"}, "kind"),
        ({"kind": "anomaly", "metric": "errors"}, "metric"),
        ({"kind": "anomaly", "window": "24h"}, "window"),
        ({"kind": "anomaly", "baseline": "yesterday"}, "baseline"),
        ({"kind": "anomaly", "sensitivity": 0}, "sensitivity"),
        ({"kind": "anomaly", "warning_threshold": 1}, "warning_threshold"),
        ({"kind": "anomaly", "threshold": 3}, "threshold"),
        ({"sensitivity": 3}, "sensitivity"),
        ({"kind": "no_data", "window": "7m"}, "window"),
        ({"kind": "no_data", "window": "2d"}, "window"),
        ({"kind": "no_data", "metric": "cost"}, "metric"),
        ({"metric": "reconciliation_gap_pct", "group_by": "team"}, "group_by"),
        ({"metric": "cost", "window": "day", "group_by": "team", "enforce": {"action": "block"}}, "group_by"),
        ({"kind": "anomaly", "metric": "cost", "enforce": {"action": "block"}}, "kind"),
    ],
)
def test_invalid_rules_name_the_field(collector: RunningCollector, change: dict, field: str) -> None:
    kind = change.get("kind")
    base = {"name": "odd", "metric": "requests", "window": "30m"} if kind in ("anomaly", "no_data") else BUSY
    body = {**base, "window": "1h", **change} if kind == "anomaly" else {**base, **change}
    with pytest.raises(RuleError) as caught:
        parse_rule(body)
    assert caught.value.field == field
    answer = collector.http.post("/api/v1/alert-rules", json=body)
    assert (answer.status_code, answer.json()["field"]) == (422, field)


def test_new_fields_round_trip_through_the_api(collector: RunningCollector) -> None:
    rules = [
        {**BUSY, "group_by": "end_user", "max_groups": 10, "warning_threshold": 1},
        {"name": "odd", "kind": "anomaly", "metric": "latency_p95_ms", "baseline": "rolling_median",
         "sensitivity": 2.5},
        {"name": "quiet", "kind": "no_data", "window": "45m", "filters": {"service": "checkout"}},
        {"name": "budget", "metric": "cost", "window": "day", "op": ">", "threshold": 10, "warning_threshold": 8,
         "enforce": {"action": "block"}},
    ]  # fmt: skip
    for rule in rules:
        rule_id = create(collector, rule)
        shown = collector.get(f"/api/v1/alert-rules/{rule_id}")
        assert parse_rule(shown) == parse_rule(rule)  # what GET shows, PUT takes back unchanged
        assert collector.http.put(f"/api/v1/alert-rules/{rule_id}", json=shown).status_code == 200
    budgets = collector.get("/v1/guard/budgets")["budgets"]
    assert [(budget["name"], budget["limit_usd"]) for budget in budgets] == [("budget", "10.000000000")]
