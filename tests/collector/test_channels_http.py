"""PagerDuty, Teams, Discord and Slack against loopback receivers shaped like each service; every channel's config
refused with a 422 naming what is wrong, its secrets masked and kept, and its test notification delivered."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from collector.alerts import channels
from collector.alerts.channels import Image, Message
from collector.alerts.notify import Notice
from collector.alerts.rules import Rule
from llmledger import semconv as sc
from tests.collector.receivers import Receiver, Request, discord_check, pagerduty_check, teams_check
from tests.collector.smtp_server import LOGIN, PASSWORD, SmtpServer
from tests.collector.test_alerts import RULE, evaluate, send
from tests.collector_harness import RunningCollector

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
ROUTING_KEY = "R0UT1NGKEYR0UT1NGKEYR0UT1NGKEY12"  # 32 characters, as PagerDuty's integration keys
SECRET = "shared-secret-for-signing-0123"


@pytest.fixture
def collector(tmp_path: Path) -> Iterator[RunningCollector]:
    running = RunningCollector(tmp_path / "channels.duckdb", "--alert-interval", "3600")
    running.collector.notifier.base_delay_s = 0.01
    yield running
    running.stop()


def accept_all(request: Request) -> list[str]:
    return []


def attempts_of(collector: RunningCollector, rule_id: int, count: int) -> list[dict]:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        mine = [a for a in collector.get("/api/v1/notification-attempts")["attempts"] if a["rule_id"] == rule_id]
        if len(mine) >= count:
            return sorted(mine, key=lambda a: (a["event_id"], a["attempt"]))
        time.sleep(0.05)
    raise AssertionError(f"fewer than {count} attempts")


def create(collector: RunningCollector, *channel_list: dict, **changes: object) -> int:
    answer = collector.http.post("/api/v1/alert-rules", json={**RULE, **changes, "channels": list(channel_list)})
    assert answer.status_code == 201, answer.text
    return answer.json()["id"]


def stored_rule(collector: RunningCollector, rule_id: int) -> Rule:
    con = collector.collector.store.reader()
    try:
        return dict(collector.collector.alert_engine.alerts.rules(con))[rule_id]
    finally:
        con.close()


def test_pagerduty_triggers_then_resolves_one_alert_per_rule_and_group(collector: RunningCollector) -> None:
    pagerduty = Receiver(pagerduty_check(ROUTING_KEY), ok_status=202)
    try:
        channel = {"type": "pagerduty", "routing_key": ROUTING_KEY, "url": f"{pagerduty.base}/v2/enqueue"}
        rule_id = create(collector, channel)
        send(collector, 4, NOW, **{sc.ERROR_TYPE: "RateLimitError"})
        assert evaluate(collector, NOW) == [(rule_id, "firing")]
        (trigger,) = [r.json() for r in pagerduty.wait_for(1)]
        assert trigger["event_action"] == "trigger"
        assert trigger["dedup_key"] == f"llmledger-rule-{rule_id}"
        payload = trigger["payload"]
        assert payload["severity"] == "critical"
        assert (
            payload["summary"]
            == "FIRING (critical): errors on search: error_rate over 1h is 1 (> 0.1) for team=search."
        )
        assert payload["source"] == "team=search"
        assert (payload["custom_details"]["rule_id"], payload["custom_details"]["state"]) == (rule_id, "firing")
        assert trigger["links"] == [{"href": "http://127.0.0.1:8501/alerts?team=search", "text": "Open the dashboard"}]
        assert evaluate(collector, NOW + timedelta(hours=2)) == [(rule_id, "resolved")]
        resolve = pagerduty.wait_for(2)[1].json()
        assert resolve == {
            "routing_key": ROUTING_KEY,
            "dedup_key": f"llmledger-rule-{rule_id}",
            "event_action": "resolve",
        }

        # A group has its own alert (a long group value is hashed into the 255-character limit); warning maps over.
        rule = stored_rule(collector, rule_id)
        for group in (("team", "ranking"), ("end_user", "u" * 400)):
            collector.collector.notifier.send(
                Notice(0, rule_id, rule, "firing", 0.2, NOW, group=group, severity="warning")
            )
        grouped = [r.json() for r in pagerduty.wait_for(4)[2:]]
        keys = sorted(event["dedup_key"] for event in grouped)
        assert keys[1] == f"llmledger-rule-{rule_id}-team=ranking"
        assert keys[0].startswith(f"llmledger-rule-{rule_id}-end_user-")
        assert len(keys[0]) <= 255
        assert {event["payload"]["severity"] for event in grouped} == {"warning"}
        assert pagerduty.problems == []
        assert {a["channel_host"] for a in attempts_of(collector, rule_id, 4)} == {"127.0.0.1"}
    finally:
        pagerduty.close()


def test_pagerduty_test_notification_opens_and_closes_its_own_alert(collector: RunningCollector) -> None:
    pagerduty = Receiver(pagerduty_check(ROUTING_KEY), ok_status=202)
    try:
        rule_id = create(
            collector, {"type": "pagerduty", "routing_key": ROUTING_KEY, "url": f"{pagerduty.base}/v2/enqueue"}
        )
        assert collector.http.post(f"/api/v1/alert-rules/{rule_id}/test").status_code == 202
        events = [r.json() for r in pagerduty.wait_for(2)]
        assert [e["event_action"] for e in events] == ["trigger", "resolve"]
        assert {e["dedup_key"] for e in events} == {f"llmledger-rule-{rule_id}-test"}
        assert events[0]["payload"]["severity"] == "info"
        # A report opens no alert: PagerDuty is for alerts only.
        config = stored_rule(collector, rule_id).channels[0]
        assert channels.deliver(config, Message("Weekly spend", "up 8%.")) == (
            False,
            None,
            "PagerDuty takes alerts only: this message opens or closes none",
        )
    finally:
        pagerduty.close()


def test_teams_gets_an_adaptive_card(collector: RunningCollector) -> None:
    teams = Receiver(teams_check, ok_status=202)  # a Workflows webhook answers 202
    try:
        rule_id = create(collector, {"type": "teams", "url": f"{teams.base}/workflows/secret-path"})
        rule = stored_rule(collector, rule_id)
        collector.collector.notifier.send(
            Notice(0, rule_id, rule, "firing", 0.25, NOW, group=("team", "search"), severity="warning")
        )
        (request,) = teams.wait_for(1)
        (attachment,) = request.json()["attachments"]
        card = attachment["content"]
        texts = [block["text"] for block in card["body"] if block["type"] == "TextBlock"]
        assert texts[:2] == ["FIRING (warning)", "errors on search [team=search]"]
        assert card["body"][0]["color"] == "Warning"
        facts = next(block["facts"] for block in card["body"] if block["type"] == "FactSet")
        assert {"title": "Group", "value": "team=search"} in facts
        assert {"title": "Severity", "value": "warning"} in facts
        assert card["actions"] == [
            {"type": "Action.OpenUrl", "title": "Open the dashboard", "url": "http://127.0.0.1:8501/alerts?team=search"}
        ]
        assert teams.problems == []
    finally:
        teams.close()


def test_discord_stays_within_its_limits_and_pings_nobody(collector: RunningCollector) -> None:
    discord = Receiver(discord_check, ok_status=204)
    try:
        rule_id = create(
            collector,
            {"type": "discord", "url": f"{discord.base}/api/webhooks/1/token"},
            name="@everyone " + "x" * 3000,
        )
        assert collector.http.post(f"/api/v1/alert-rules/{rule_id}/test").status_code == 202
        (request,) = discord.wait_for(1)
        body = request.json()
        assert len(body["content"]) == 2000
        assert body["content"].startswith("**TEST NOTIFICATION**: @everyone xxx")
        assert body["content"].endswith("…")
        assert body["allowed_mentions"] == {"parse": []}
        assert len(body["embeds"][0]["title"]) == 256
        assert discord.problems == []
    finally:
        discord.close()


@pytest.mark.parametrize(
    ("kind", "check", "ok_status"),
    [
        ("pagerduty", pagerduty_check(ROUTING_KEY), 202),
        ("teams", teams_check, 202),
        ("discord", discord_check, 204),
        ("slack", accept_all, 200),
    ],
)
def test_a_5xx_is_retried_and_each_attempt_recorded(
    collector: RunningCollector, kind: str, check: object, ok_status: int
) -> None:
    receiver = Receiver(check, ok_status=ok_status, statuses=[500, 503])  # type: ignore[arg-type]
    try:
        channel = {"type": kind, "url": f"{receiver.base}/v2/enqueue"}
        if kind == "pagerduty":
            channel["routing_key"] = ROUTING_KEY
        rule_id = create(collector, channel)
        send(collector, 4, NOW, **{sc.ERROR_TYPE: "RateLimitError"})
        assert evaluate(collector, NOW) == [(rule_id, "firing")]
        assert len(receiver.wait_for(1)) == 1
        attempts = attempts_of(collector, rule_id, 3)
        assert [(a["attempt"], a["ok"], a["http_status"], a["error"]) for a in attempts] == [
            (1, False, 500, "HTTP 500"),
            (2, False, 503, "HTTP 503"),
            (3, True, ok_status, None),
        ]
        assert {(a["channel_type"], a["channel_host"]) for a in attempts} == {(kind, "127.0.0.1")}
    finally:
        receiver.close()


def email(**changes: object) -> dict[str, object]:
    return {
        "type": "email",
        "host": "smtp.example.test",
        "username": "u",
        "password": "p",
        "from": "a@example.test",
        "to": ["b@example.test"],
        **changes,
    }


@pytest.mark.parametrize(
    ("channel", "says"),
    [
        ({"type": "sms", "url": "https://x.test"}, "type must be one of webhook, slack, email, pagerduty, teams"),
        ({"type": "teams", "url": "teams.example.test/hook"}, "url must be an http(s) URL"),
        ({"type": "discord", "url": "https://discord.test/x", "username": "bot"}, "'username' is not a field"),
        ({"type": "pagerduty"}, "routing_key is required"),
        ({"type": "pagerduty", "routing_key": "key with spaces in it, 32 chars"}, "routing_key is required"),
        ({"type": "pagerduty", "routing_key": ROUTING_KEY, "url": "ftp://x.test"}, "url must be an http(s) URL"),
        ({"type": "signed_webhook", "url": "https://x.test/h", "secret": "short"}, "secret is required"),
        ({"type": "signed_webhook", "url": "https://x.test/h"}, "secret is required"),
        (email(host=""), "host is required"),
        (email(port=0), "port must be a whole number"),
        (email(to=[]), "to must be a list of 1 to 50"),
        (email(to=["not an address"]), "to must be an e-mail address"),
        (email(**{"from": "a@example.test\r\nBcc: x@evil.test"}), "from must be an e-mail address"),
        (email(password=None), "username and password go together"),
        (email(starttls=False), "starttls is false: no username/password"),
        (email(starttls="yes"), "starttls must be true or false"),
        (email(tls_ca_file="ca.pem"), "tls_ca_file must be the absolute path"),
    ],
)
def test_a_bad_channel_is_a_422_naming_what_is_wrong(collector: RunningCollector, channel: dict, says: str) -> None:
    answer = collector.http.post(
        "/api/v1/alert-rules", json={**RULE, "channels": [{"type": "webhook", "url": "https://ok.test/h"}, channel]}
    )
    assert answer.status_code == 422
    assert answer.json()["field"] == "channels"
    assert answer.json()["error"].startswith(f"channel 1: {says}"), answer.json()["error"]
    assert collector.get("/api/v1/alert-rules")["rules"] == []


def test_every_secret_is_masked_kept_when_sent_back_and_never_logged(
    collector: RunningCollector, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Every channel on one rule: GET shows no secret; PUT of what GET showed keeps them all; a kept secret never
    goes to a new server; the test notification reaches each channel's own server; no secret in any log record."""
    caplog.set_level(logging.DEBUG)
    smtp = SmtpServer(tmp_path)
    pagerduty = Receiver(pagerduty_check(ROUTING_KEY), ok_status=202)
    teams, discord, hooks = (
        Receiver(teams_check, ok_status=202),
        Receiver(discord_check, ok_status=204),
        Receiver(accept_all),
    )
    try:
        given = [
            {"type": "webhook", "url": f"{hooks.base}/hooks/webhook-secret-path"},
            {"type": "slack", "url": f"{hooks.base}/services/slack-secret-path"},
            {
                "type": "email",
                "host": "127.0.0.1",
                "port": smtp.port,
                "username": LOGIN,
                "password": PASSWORD,
                "from": "alerts@example.test",
                "to": ["oncall@example.test"],
                "starttls": True,
                "tls_ca_file": str(smtp.cert),
            },
            {"type": "pagerduty", "routing_key": ROUTING_KEY, "url": f"{pagerduty.base}/v2/enqueue"},
            {"type": "teams", "url": f"{teams.base}/workflows/teams-secret-path"},
            {"type": "discord", "url": f"{discord.base}/api/webhooks/1/discord-secret-path"},
            {"type": "signed_webhook", "url": f"{hooks.base}/hooks/signed-secret-path", "secret": SECRET},
        ]
        secrets = ["secret-path", PASSWORD, ROUTING_KEY, SECRET, "/v2/enqueue", "/workflows"]
        rule_id = create(collector, *given)
        shown = collector.get(f"/api/v1/alert-rules/{rule_id}")["channels"]
        assert not [secret for secret in secrets if secret in json.dumps(shown, ensure_ascii=False)]
        assert shown[2] == {**given[2], "password": "•••3"}
        assert shown[3] == {"type": "pagerduty", "routing_key": "•••4", "url": "http://127.0.0.1/•••4"}
        assert shown[6] == {"type": "signed_webhook", "url": "http://127.0.0.1/•••7", "secret": "•••7"}

        # Sent back as shown (e-mail with a new recipient): every secret kept.
        shown[2] = {**shown[2], "to": ["oncall@example.test", "finance@example.test"]}
        assert collector.http.put(f"/api/v1/alert-rules/{rule_id}", json={**RULE, "channels": shown}).status_code == 200
        kept = stored_rule(collector, rule_id).channels
        assert kept == [*given[:2], {**given[2], "to": ["oncall@example.test", "finance@example.test"]}, *given[3:]]

        # A masked secret with a new server: refused, the stored secret would go to it.
        for index, change, says in (
            (2, {"host": "smtp.evil.test"}, "password is masked, which keeps the stored one only for the same host"),
            (3, {"url": "https://evil.test/v2/enqueue"}, "routing_key is masked"),
            (6, {"url": "https://evil.test/hook"}, "secret is masked"),
            (6, {"secret": "•••3"}, "•••7 is a masked URL this rule does not have"),  # two positions: none
            (2, {"type": "email", "password": "•••4"}, "•••4 is a masked password this rule does not have"),
        ):
            channel = {**shown[index], **change}
            refused = collector.http.put(f"/api/v1/alert-rules/{rule_id}", json={**RULE, "channels": [channel]})
            assert refused.status_code == 422
            assert says in refused.json()["error"], refused.json()["error"]
        assert stored_rule(collector, rule_id).channels == kept

        # The test notification reaches every channel's own server.
        assert collector.http.post(f"/api/v1/alert-rules/{rule_id}/test").json() == {"channels": 7}
        assert len(smtp.wait_for(1)) == 1
        assert len(pagerduty.wait_for(2)) == 2
        assert len(teams.wait_for(1)) == len(discord.wait_for(1)) == 1
        assert sorted(r.path for r in hooks.wait_for(3)) == [
            "/hooks/signed-secret-path",
            "/hooks/webhook-secret-path",
            "/services/slack-secret-path",
        ]
        attempts = attempts_of(collector, rule_id, 7)
        assert sorted(a["channel_type"] for a in attempts if a["ok"]) == sorted(c["type"] for c in given)
        logged = "\n".join(record.getMessage() for record in caplog.records)
        assert "HTTP Request: POST http://127.0.0.1/•••" in logged  # httpx2's request lines, host only
        assert not [secret for secret in secrets if secret in logged + json.dumps(attempts)]
    finally:
        for server in (smtp, pagerduty, teams, discord, hooks):
            server.close()


def test_a_report_reaches_slack_teams_and_discord_as_text(collector: RunningCollector) -> None:
    """What a digest sends: the chart image is for e-mail; chat channels get the text."""
    hooks, teams, discord = Receiver(accept_all), Receiver(teams_check), Receiver(discord_check, ok_status=204)
    try:
        report = Message(
            "Weekly spend: search",
            "Spend was $12.40, up 8% on the week before.",
            body="Top models: gpt-5-mini $9.10",
            image=Image(b"\x89PNG", "chart"),
            link="http://127.0.0.1:8501/spend",
        )
        for config in (
            {"type": "slack", "url": f"{hooks.base}/s"},
            {"type": "teams", "url": f"{teams.base}/t"},
            {"type": "discord", "url": f"{discord.base}/d"},
            {"type": "webhook", "url": f"{hooks.base}/w"},
        ):
            assert channels.deliver(channels.parse(config), report).ok
        slack, webhook = (r.json() for r in hooks.wait_for(2))
        assert slack == {
            "text": ":bar_chart: REPORT *Weekly spend: search*: Spend was $12.40, up 8% on the week "
            "before.\nTop models: gpt-5-mini $9.10 <http://127.0.0.1:8501/spend|Open the dashboard>"
        }
        assert webhook["title"] == "Weekly spend: search"
        assert webhook["body"] == "Top models: gpt-5-mini $9.10"
        card = teams.wait_for(1)[0].json()["attachments"][0]["content"]
        assert "Top models: gpt-5-mini $9.10" in [block.get("text") for block in card["body"]]
        assert discord.wait_for(1)[0].json()["embeds"][0]["description"].endswith("Top models: gpt-5-mini $9.10")
    finally:
        for server in (hooks, teams, discord):
            server.close()
