"""Digests against a real collector: a weekly report's exact figures from known calls, its chart, e-mail with the
chart inline and Slack as text (loopback servers), send now, the schedule sending once per period, 422s, masks."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from collector.digests.spec import Digest, DigestError, due, last_complete, next_send, parse_digest
from llmledger import semconv as sc
from tests.collector.receivers import Receiver
from tests.collector.smtp_server import LOGIN, PASSWORD, SmtpServer
from tests.collector_harness import RunningCollector
from tests.otlp_spans import chat_attributes, request_with

PROTOBUF = {"Content-Type": "application/x-protobuf"}
NOW = datetime(2026, 3, 16, 9, 0, tzinfo=UTC)  # a Monday, after an 08:00 send hour: last week is due
WEEK = {"name": "Search weekly", "schedule": "weekly", "send_hour": 8, "filters": {"team": ["search"]}}


def send(running: RunningCollector, count: int, at: datetime, model: str, **attrs: Any) -> None:
    """`count` calls at `at`, one second apart; gpt-4o 1000 in + 100 out = $0.0035, gpt-4o-mini $0.00021."""
    tokens = {
        sc.GEN_AI_USAGE_INPUT_TOKENS: 1000,
        sc.GEN_AI_USAGE_OUTPUT_TOKENS: 100,
        sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS: 0,
    }
    spans = [chat_attributes(**{sc.GEN_AI_REQUEST_MODEL: model, sc.GEN_AI_RESPONSE_MODEL: model, **tokens, **attrs})
             for _ in range(count)]  # fmt: skip
    body = request_with(spans, start_ns=int(at.timestamp() * 1e9)).SerializeToString()
    assert running.http.post("/v1/traces", content=body, headers=PROTOBUF).status_code == 200


def known_calls(running: RunningCollector) -> None:
    """Team search: last week $0.01092 over 6 calls (1 error), the week before $0.0035; team ads $0.0035 last week."""
    search = {sc.TEAM: "search"}
    send(running, 1, datetime(2026, 3, 4, 10, tzinfo=UTC), "gpt-4o", **search, **{sc.FEATURE: "chat"})
    send(running, 3, datetime(2026, 3, 10, 10, tzinfo=UTC), "gpt-4o", **search, **{sc.FEATURE: "chat"})
    send(running, 2, datetime(2026, 3, 12, 10, tzinfo=UTC), "gpt-4o-mini", **search, **{sc.FEATURE: "summarize"})
    failed = {sc.GEN_AI_USAGE_INPUT_TOKENS: None, sc.GEN_AI_USAGE_OUTPUT_TOKENS: None, sc.ERROR_TYPE: "RateLimitError"}
    send(
        running,
        1,
        datetime(2026, 3, 12, 11, tzinfo=UTC),
        "gpt-4o-mini",
        **search,
        **{sc.FEATURE: "summarize", **failed},
    )
    send(running, 1, datetime(2026, 3, 11, 10, tzinfo=UTC), "gpt-4o", **{sc.TEAM: "ads", sc.FEATURE: "chat"})


@pytest.fixture
def running(tmp_path: Path) -> Iterator[RunningCollector]:
    collector = RunningCollector(tmp_path / "digests.duckdb", "--alert-interval", "3600")
    collector.collector.digests.base_delay_s = 0.01
    known_calls(collector)
    yield collector
    collector.stop()


@pytest.fixture
def smtp(tmp_path: Path) -> Iterator[SmtpServer]:
    server = SmtpServer(tmp_path)
    yield server
    server.close()


@pytest.fixture
def slack() -> Iterator[Receiver]:
    receiver = Receiver(lambda request: [] if set(request.json()) == {"text"} else ["not a Slack body"])
    yield receiver
    receiver.close()


def email_channel(server: SmtpServer) -> dict[str, Any]:
    return {
        "type": "email",
        "host": "127.0.0.1",
        "port": server.port,
        "username": LOGIN,
        "password": PASSWORD,
        "from": "llmledger <reports@example.test>",
        "to": ["finance@example.test"],
        "starttls": True,
        "tls_ca_file": str(server.cert),
    }


def create(running: RunningCollector, **changes: Any) -> int:
    answer = running.http.post("/api/v1/digests", json={**WEEK, **changes})
    assert answer.status_code == 201, answer.text
    return answer.json()["id"]


def add_budgets_and_bill(running: RunningCollector) -> None:
    """A search budget (covers the digest), an ads one (doesn't), and OpenAI's bill for 2026-03-10 with a model
    none of our calls used ($0.5 billed against our $0.0105 that day: $0.4895 untracked)."""
    budget = {"metric": "cost", "window": "month", "op": ">", "threshold": 0.02, "enforce": {"action": "block"}}
    for name, team in (("search monthly", "search"), ("ads monthly", "ads")):
        answer = running.http.post("/api/v1/alert-rules", json={"name": name, **budget, "filters": {"team": [team]}})
        assert answer.status_code == 201, answer.text
    with running.collector.store.transaction() as con:
        con.execute("INSERT INTO openai_costs VALUES ('2026-03-10', 'gpt-4.1-2025-04-14, input', NULL, 0.5, 'usd')")
        con.execute("INSERT INTO openai_pulled_days VALUES ('2026-03-10', '2026-03-11 01:00:00+00')")


def report(running: RunningCollector, payload: dict[str, Any], now: datetime = NOW) -> Any:
    digests = running.collector.digests
    con = running.collector.store.reader()
    try:
        digest = parse_digest(payload)
        return digests.report(con, digest, last_complete(digest.schedule, now), now)
    finally:
        con.close()


def attempts_of(running: RunningCollector, digest_id: int, sends: int) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        found = running.get(f"/api/v1/digests/{digest_id}/deliveries")["deliveries"]
        if len(found) >= sends and all(send["attempts"] for send in found):
            return found
        time.sleep(0.05)
    raise AssertionError(f"fewer than {sends} delivered sends of digest {digest_id}")


def test_a_weekly_report_has_the_exact_figures(running: RunningCollector) -> None:
    add_budgets_and_bill(running)
    made = report(running, WEEK)
    # 15 days and 9 hours of March's 31 days have passed: $0.01442 so far → $0.01442 x 31 / 15.375.
    forecast = "0.029074472"
    assert made.as_json() == {
        "digest": "Search weekly",
        "period": {"from": "2026-03-09", "to": "2026-03-16"},
        "previous_period_from": "2026-03-02",
        "made_at": "2026-03-16T09:00:00+00:00",
        "filters": {"team": ["search"]},
        "spend_usd": "0.010920000",
        "previous_spend_usd": "0.003500000",
        "change_usd": "0.007420000",
        "requests": 6,
        "errors": 1,
        "unpriced_requests": 0,
        "error_rate": "0.1667",
        "daily": [
            {"day": f"2026-03-{day:02d}", "cost_usd": cost}
            for day, cost in (
                (9, "0.000000000"),
                (10, "0.010500000"),
                (11, "0.000000000"),
                (12, "0.000420000"),
                (13, "0.000000000"),
                (14, "0.000000000"),
                (15, "0.000000000"),
            )
        ],
        "top_models": [
            {"name": "gpt-4o", "cost_usd": "0.010500000", "requests": 3},
            {"name": "gpt-4o-mini", "cost_usd": "0.000420000", "requests": 3},
        ],
        "top_features": [
            {"name": "chat", "cost_usd": "0.010500000", "requests": 3},
            {"name": "summarize", "cost_usd": "0.000420000", "requests": 3},
        ],
        "month": "2026-03",
        "month_to_date_usd": "0.014420000",
        "month_forecast_usd": forecast,
        "budgets": [
            {
                "rule_id": 1,
                "name": "search monthly",
                "window": "month",
                "limit_usd": "0.020000000",
                "spent_usd": "0.014420000",
                "projected_usd": forecast,
                "enforce": "block",
            }
        ],
        "untracked_usd": "0.489500000",
        "untracked_days": 1,
    }
    assert Decimal(forecast) == (Decimal("0.01442") * 31 / Decimal("15.375")).quantize(Decimal("1e-9"))
    assert made.lines() == [
        "Spend: $0.01092 (previous period $0.0035: +$0.00742, +212.0%)",
        "Requests: 6; errors: 1 (16.67% error rate)",
        "Top models: gpt-4o $0.0105 (3 calls); gpt-4o-mini $0.00042 (3 calls)",
        "Top features: chat $0.0105 (3 calls); summarize $0.00042 (3 calls)",
        "Month to date (2026-03): $0.01442, projected $0.029074472 by the month's end",
        "Budget 'search monthly' (month, enforced: block): $0.01442 of $0.02, projected $0.029074472, over by "
        "$0.009074472",
        "Untracked spend (OpenAI's bill beyond our calls, whole organization, 1 day(s) pulled): $0.4895",
    ]
    assert (
        made.summary()
        == "Weekly report for team=search, 2026-03-09 to 2026-03-15 (UTC): $0.01092 spent (+$0.00742, +212.0%)."
    )


def test_unpriced_calls_are_counted_apart_never_shown_as_spend(running: RunningCollector) -> None:
    send(running, 2, datetime(2026, 3, 12, 12, tzinfo=UTC), "acme-private-1", **{sc.TEAM: "search"})
    made = report(running, WEEK)
    assert (made.unpriced, made.requests, made.as_json()["spend_usd"]) == (2, 8, "0.010920000")
    assert (
        made.lines()[0] == "Spend: $0.01092 (previous period $0.0035: +$0.00742, +212.0%; 2 unpriced call(s) not in it)"
    )


def test_a_daily_report_of_a_quiet_day_and_no_bill_pulled(running: RunningCollector) -> None:
    made = report(running, {**WEEK, "schedule": "daily"}, datetime(2026, 3, 11, 8, tzinfo=UTC))
    figures = made.as_json()
    assert (figures["period"], figures["spend_usd"], figures["previous_spend_usd"], figures["requests"]) == (
        {"from": "2026-03-10", "to": "2026-03-11"},
        "0.010500000",
        "0.000000000",
        3,
    )
    assert made.change() == "+$0.0105"  # no percentage from nothing
    assert (figures["untracked_usd"], figures["budgets"]) == (None, [])
    assert not any(line.startswith("Untracked") for line in made.lines())


def test_preview_sends_nothing_and_carries_the_chart(running: RunningCollector) -> None:
    answer = running.http.post("/api/v1/digests/preview", json={**WEEK, "schedule": "monthly"})
    assert answer.status_code == 200, answer.text
    preview = answer.json()
    assert base64.b64decode(preview["png_base64"]).startswith(b"\x89PNG\r\n\x1a\n")
    period = last_complete("monthly", datetime.now(UTC))  # the last complete month (the test's calls are older)
    assert preview["report"]["period"] == {"from": period.start.isoformat(), "to": period.end.isoformat()}
    assert preview["text"].startswith(f"REPORT: Search weekly\n\nMonthly report for team=search, {period.label} (UTC)")
    assert preview["png_alt"].startswith(f"Daily cost, {period.label} (UTC)")
    assert running.get("/api/v1/digests") == {"digests": []}


def test_email_carries_the_report_and_its_chart_inline(running: RunningCollector, smtp: SmtpServer) -> None:
    digest_id = create(running, channels=[email_channel(smtp)])
    answer = running.http.post(f"/api/v1/digests/{digest_id}/send")
    assert answer.status_code == 202, answer.text
    period = last_complete("weekly", datetime.now(UTC))
    assert answer.json()["period"] == {"from": period.start.isoformat(), "to": period.end.isoformat()}
    [received] = smtp.wait_for(1)
    assert (received.over_tls, received.authenticated, received.rcpt_tos) == (True, True, ["finance@example.test"])
    mail = received.message
    assert mail["Subject"] == "[llmledger] REPORT: Search weekly"
    plain = mail.get_body(("plain",)).get_content()
    for part in ("Weekly report for team=search", "Top models:", "Top features:", "Month to date"):
        assert part in plain
    related = next(part for part in mail.walk() if part.get_content_type() == "multipart/related")
    html, image = related.get_payload()
    assert (image.get_content_type(), image.get_filename()) == ("image/png", "daily-cost.png")
    assert image.get_content().startswith(b"\x89PNG\r\n\x1a\n")
    assert f'src="cid:{image["Content-ID"][1:-1]}"' in html.get_content()
    assert "<li>Spend: $" in html.get_content()
    [delivery] = attempts_of(running, digest_id, 1)
    assert (delivery["reason"], delivery["period"]) == (
        "now",
        {"from": period.start.isoformat(), "to": period.end.isoformat()},
    )
    assert [(a["channel_type"], a["channel_host"], a["ok"]) for a in delivery["attempts"]] == [
        ("email", "127.0.0.1", True)]  # fmt: skip
    assert running.get(f"/api/v1/digests/{digest_id}")["last_period"] is None  # the schedule is left as it was


def test_slack_gets_the_report_as_text(running: RunningCollector, slack: Receiver) -> None:
    digest_id = create(running, channels=[{"type": "slack", "url": f"{slack.base}/services/T0/B0/secret"}])
    assert running.http.post(f"/api/v1/digests/{digest_id}/send").status_code == 202
    [posted] = slack.wait_for(1)
    text = posted.json()["text"]
    assert text.startswith(":bar_chart: REPORT *Search weekly*: Weekly report for team=search")
    assert "\nSpend: $" in text
    assert "Top features:" in text
    [delivery] = attempts_of(running, digest_id, 1)
    assert [(a["channel_type"], a["http_status"], a["ok"]) for a in delivery["attempts"]] == [("slack", 200, True)]


def test_the_schedule_sends_once_per_period(running: RunningCollector, slack: Receiver) -> None:
    digest_id = create(running, channels=[{"type": "slack", "url": f"{slack.base}/s"}])
    digests, con = running.collector.digests, running.collector.store.reader()
    try:
        monday = datetime(2026, 3, 16, tzinfo=UTC)
        assert digests.run_once(con, monday + timedelta(hours=7, minutes=59)) == []  # before the send hour
        [first] = digests.run_once(con, monday + timedelta(hours=8))
        assert digests.run_once(con, monday + timedelta(hours=8, minutes=1)) == []
        assert digests.run_once(con, monday + timedelta(days=3)) == []  # still the same week: sent
        # Down all of the next Monday: sent on Tuesday, within its week; then not again that week.
        [second] = digests.run_once(con, monday + timedelta(days=8, hours=2))
        assert digests.run_once(con, monday + timedelta(days=13, hours=23)) == []
    finally:
        con.close()
    assert second != first
    deliveries = running.get(f"/api/v1/digests/{digest_id}/deliveries")["deliveries"]
    assert [(d["reason"], d["period"]["from"], len(d["attempts"])) for d in deliveries] == [
        ("schedule", "2026-03-16", 1), ("schedule", "2026-03-09", 1)]  # fmt: skip
    assert running.get(f"/api/v1/digests/{digest_id}")["last_period"] == "2026-03-16"
    bodies = [request.json()["text"] for request in slack.wait_for(2)]
    assert ["2026-03-09 to 2026-03-15" in bodies[0], "2026-03-16 to 2026-03-22" in bodies[1]] == [True, True]


def test_a_second_collector_does_not_send_a_claimed_period_but_takes_over_a_dead_claim(
    running: RunningCollector, slack: Receiver
) -> None:
    digest_id = create(running, channels=[{"type": "slack", "url": f"{slack.base}/s"}])
    digests, con = running.collector.digests, running.collector.store.reader()
    try:
        [stored] = digests.records.digests(con, digest_id)
        period = due(stored.digest, None, NOW)
        assert period is not None
        # Another collector claimed the period and died before any attempt.
        assert digests.records.claim_scheduled(stored, period, "dead-collector:1", NOW) is not None
        assert digests.run_once(con, NOW + timedelta(seconds=30)) == []  # claimed: not sent again
        [taken] = digests.run_once(con, NOW + timedelta(minutes=2))  # a minute without an attempt: taken over
        assert digests.run_once(con, NOW + timedelta(minutes=5)) == []
    finally:
        con.close()
    assert len(slack.wait_for(1)) == 1
    [delivery] = running.get(f"/api/v1/digests/{digest_id}/deliveries")["deliveries"]
    assert (delivery["id"], len(delivery["attempts"])) == (taken, 1)


def test_schedule_arithmetic() -> None:
    daily = Digest("d", "daily", 6, channels=[{"type": "slack", "url": "https://hooks.slack.com/x"}])
    assert due(daily, None, datetime(2026, 3, 1, 5, 59, tzinfo=UTC)) is None
    period = due(daily, None, datetime(2026, 3, 1, 6, tzinfo=UTC))
    assert period is not None
    assert (period.start, period.end, period.previous_start) == (
        date(2026, 2, 28),
        date(2026, 3, 1),
        date(2026, 2, 27),
    )
    assert due(daily, date(2026, 2, 28), datetime(2026, 3, 1, 23, tzinfo=UTC)) is None
    monthly = Digest("m", "monthly", 0, channels=daily.channels)
    march = last_complete("monthly", datetime(2026, 3, 31, tzinfo=UTC))
    assert (march.start, march.end, march.previous_start) == (date(2026, 2, 1), date(2026, 3, 1), date(2026, 1, 1))
    assert next_send(monthly, date(2026, 2, 1), datetime(2026, 3, 5, tzinfo=UTC)) == datetime(2026, 4, 1, tzinfo=UTC)
    assert due(Digest("x", "weekly"), None, NOW) is None  # no channels: nothing to send


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"name": ""}, "name"),
        ({"schedule": "hourly"}, "schedule"),
        ({"send_hour": 24}, "send_hour"),
        ({"send_hour": "8"}, "send_hour"),
        ({"filters": {"colour": ["blue"]}}, "filters"),
        ({"channels": [{"type": "slack", "url": "not a url"}]}, "channels"),
        ({"channels": [{"type": "pagerduty", "routing_key": "k" * 32}]}, "channels"),
        ({"enabled": "yes"}, "enabled"),
        ({"every": "day"}, "every"),
    ],
)
def test_bad_input_is_a_422_naming_the_field(running: RunningCollector, change: dict, field: str) -> None:
    for path in ("/api/v1/digests", "/api/v1/digests/preview"):
        answer = running.http.post(path, json={**WEEK, **change})
        assert (answer.status_code, answer.json()["field"]) == (422, field), answer.text
    with pytest.raises(DigestError):
        parse_digest({**WEEK, **change})
    assert running.get("/api/v1/digests") == {"digests": []}  # nothing stored


def test_crud_masks_secrets_and_keeps_them_when_sent_back(running: RunningCollector, smtp: SmtpServer) -> None:
    secret_url = "https://hooks.slack.com/services/T0/B0/very-secret"
    digest_id = create(running, channels=[{"type": "slack", "url": secret_url}, email_channel(smtp)])
    shown = running.get(f"/api/v1/digests/{digest_id}")
    assert shown["channels"][0]["url"] == "https://hooks.slack.com/•••1"
    assert shown["channels"][1]["password"] == "•••2"
    listed = json.dumps(running.get("/api/v1/digests"))
    assert (PASSWORD in listed, "very-secret" in listed) == (False, False)
    assert (shown["enabled"], shown["last_period"]) == (True, None)
    assert shown["next_send_at"] is not None
    # Sent back as read (masks and all), with a new name: the stored secrets stay.
    update = {key: shown[key] for key in ("name", "schedule", "send_hour", "filters", "channels", "enabled")}
    answer = running.http.put(f"/api/v1/digests/{digest_id}", json={**update, "name": "Renamed"})
    assert answer.status_code == 200, answer.text
    con = running.collector.store.reader()
    try:
        [stored] = running.collector.digests.records.digests(con, digest_id)
    finally:
        con.close()
    assert (stored.digest.name, stored.digest.channels[0]["url"], stored.digest.channels[1]["password"]) == (
        "Renamed",
        secret_url,
        PASSWORD,
    )
    # A mask that stands for nothing is refused.
    answer = running.http.post(
        "/api/v1/digests", json={**WEEK, "channels": [{"type": "slack", "url": "https://hooks.slack.com/•••1"}]}
    )
    assert (answer.status_code, answer.json()["field"]) == (422, "channels")
    assert running.http.put("/api/v1/digests/999", json=WEEK).status_code == 404
    assert running.http.post("/api/v1/digests/999/send").status_code == 404
    assert running.http.delete(f"/api/v1/digests/{digest_id}").status_code == 204
    assert running.http.get(f"/api/v1/digests/{digest_id}").status_code == 404


def test_send_now_without_channels_is_a_422(running: RunningCollector) -> None:
    digest_id = create(running)
    answer = running.http.post(f"/api/v1/digests/{digest_id}/send")
    assert (answer.status_code, answer.json()["field"]) == (422, "channels")
