"""The e-mail channel against a loopback SMTP server: STARTTLS on a certificate made here, AUTH LOGIN and PLAIN, a
wrong password refused, an untrusted certificate refused, a plain relay, and a report with an inline chart."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from collector.alerts import channels
from collector.alerts.channels import Image, Message
from collector.alerts.notify import Notice
from tests.collector.smtp_server import LOGIN, PASSWORD, SmtpServer
from tests.collector_harness import RunningCollector

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
RULE = {
    "name": "spend on search",
    "metric": "cost",
    "window": "day",
    "op": ">",
    "threshold": 5,
    "filters": {"team": ["search"]},
}
# The smallest valid PNG: one transparent pixel.
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c4890000000d49444154789c6300010000000500010d0a2db4"
    "0000000049454e44ae426082"
)


@pytest.fixture
def collector(tmp_path: Path) -> Iterator[RunningCollector]:
    running = RunningCollector(tmp_path / "email.duckdb", "--alert-interval", "3600")
    running.collector.notifier.base_delay_s = 0.01
    yield running
    running.stop()


@pytest.fixture
def smtp(tmp_path: Path) -> Iterator[SmtpServer]:
    server = SmtpServer(tmp_path)
    yield server
    server.close()


def email_channel(server: SmtpServer, **changes: object) -> dict[str, object]:
    channel = {
        "type": "email",
        "host": "127.0.0.1",
        "port": server.port,
        "username": LOGIN,
        "password": PASSWORD,
        "from": "llmledger <alerts@example.test>",
        "to": ["oncall@example.test", "finance@example.test"],
        "starttls": True,
        "tls_ca_file": str(server.cert),
    }
    return {**channel, **changes}


def attempts_of(collector: RunningCollector, rule_id: int, count: int) -> list[dict]:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        mine = [a for a in collector.get("/api/v1/notification-attempts")["attempts"] if a["rule_id"] == rule_id]
        if len(mine) >= count:
            return sorted(mine, key=lambda a: a["attempt"])
        time.sleep(0.05)
    raise AssertionError(f"fewer than {count} attempts")


@pytest.mark.parametrize("mechanism", ["LOGIN", "PLAIN"])
def test_test_notification_over_starttls_with_auth(collector: RunningCollector, tmp_path: Path, mechanism: str) -> None:
    server = SmtpServer(tmp_path, mechanisms=(mechanism,))
    try:
        rule_id = collector.http.post("/api/v1/alert-rules", json={**RULE, "channels": [email_channel(server)]}).json()[
            "id"
        ]
        assert collector.http.post(f"/api/v1/alert-rules/{rule_id}/test").status_code == 202
        (received,) = server.wait_for(1)
        assert server.auths == [(mechanism, LOGIN, True)]
        assert (received.over_tls, received.authenticated) == (True, True)
        assert received.mail_from == "alerts@example.test"
        assert received.rcpt_tos == ["oncall@example.test", "finance@example.test"]
        message = received.message
        assert message["Subject"] == "[llmledger] TEST NOTIFICATION: spend on search"
        assert message["To"] == "oncall@example.test, finance@example.test"
        assert message.get_content_type() == "multipart/alternative"
        plain, html = message.get_body(("plain",)), message.get_body(("html",))
        assert plain is not None
        assert html is not None
        assert "cost over day is no data (> 5) for team=search." in plain.get_content()
        assert "http://127.0.0.1:8501/alerts?team=search" in plain.get_content()
        assert "<h2>spend on search</h2>" in html.get_content()
        assert "(&gt; 5)" in html.get_content()
        (attempt,) = attempts_of(collector, rule_id, 1)
        assert (attempt["channel_type"], attempt["channel_host"], attempt["ok"]) == ("email", "127.0.0.1", True)
    finally:
        server.close()


def test_a_group_and_severity_reach_the_mail(collector: RunningCollector, smtp: SmtpServer) -> None:
    rule_id = collector.http.post("/api/v1/alert-rules", json={**RULE, "channels": [email_channel(smtp)]}).json()["id"]
    (_, rule), *_ = collector.collector.alert_engine.alerts.rules(collector.collector.store.reader())
    notice = Notice(0, rule_id, rule, "firing", 7.25, NOW, group=("feature", "summarise"), severity="warning")
    collector.collector.notifier.send(notice)
    (received,) = smtp.wait_for(1)
    assert received.message["Subject"] == "[llmledger] FIRING (warning): spend on search [feature=summarise]"
    text = received.message.get_body(("plain",)).get_content()
    assert "cost over day is 7.25 (> 5) for feature=summarise, team=search." in text
    assert "Severity: warning" in text
    assert "Group: feature=summarise" in text


def test_a_wrong_password_is_refused_retried_and_recorded(collector: RunningCollector, smtp: SmtpServer) -> None:
    wrong = email_channel(smtp, password="not-the-password-42")
    rule_id = collector.http.post("/api/v1/alert-rules", json={**RULE, "channels": [wrong]}).json()["id"]
    collector.http.post(f"/api/v1/alert-rules/{rule_id}/test")
    attempts = attempts_of(collector, rule_id, 5)
    assert [(a["attempt"], a["ok"], a["http_status"], a["error"]) for a in attempts] == [
        (n, False, None, "SMTPAuthenticationError 535") for n in range(1, 6)
    ]
    assert smtp.received == []
    # Each attempt offers the password by each mechanism the server advertises (smtplib's login), and is refused.
    assert sorted(smtp.auths) == [("LOGIN", LOGIN, False)] * 5 + [("PLAIN", LOGIN, False)] * 5
    shown = json.dumps(attempts) + collector.http.get(f"/api/v1/alert-rules/{rule_id}").text
    assert "not-the-password-42" not in shown


def test_an_untrusted_certificate_is_refused_before_the_password_is_sent(smtp: SmtpServer) -> None:
    untrusted = channels.parse({**email_channel(smtp), "tls_ca_file": None})  # the system's CAs only
    message = Message("spend on search", "a test.", state="test")
    assert channels.deliver(untrusted, message, 5) == (False, None, "SSLCertVerificationError")
    assert (smtp.received, smtp.auths) == ([], [])
    assert channels.deliver(channels.parse(email_channel(smtp)), message, 5) == (True, None, None)


def test_a_plain_relay_and_no_fallback_to_plain_text(tmp_path: Path) -> None:
    relay = SmtpServer(None)
    try:
        plain = channels.parse(
            {
                "type": "email",
                "host": "127.0.0.1",
                "port": relay.port,
                "starttls": False,
                "from": "alerts@example.test",
                "to": "oncall@example.test",
            }
        )
        assert channels.deliver(plain, Message("relay", "plain SMTP."), 5).ok
        (received,) = relay.wait_for(1)
        assert (received.over_tls, received.rcpt_tos) == (False, ["oncall@example.test"])
        # STARTTLS asked of a server that offers none: refused, never sent in the clear.
        wants_tls = {**plain, "starttls": True}
        assert channels.deliver(wants_tls, Message("relay", "plain SMTP."), 5) == (False, None, "SMTPNotSupportedError")
        assert len(relay.received) == 1
    finally:
        relay.close()


def test_a_report_carries_its_chart_inline(smtp: SmtpServer) -> None:
    """What a digest sends: a body, its HTML, and a PNG the HTML shows by its Content-ID."""
    report = Message(
        "Weekly spend: search",
        "Spend was $12.40, up 8% on the week before.",
        body="Top models: gpt-5-mini $9.10, gpt-5 $3.30",
        html="<p>Top models: <b>gpt-5-mini</b> $9.10</p>",
        image=Image(PNG, "Daily spend, last 7 days", "spend.png"),
        link="http://127.0.0.1:8501/spend",
    )
    assert channels.deliver(channels.parse(email_channel(smtp)), report, 5).ok
    (received,) = smtp.wait_for(1)
    message = received.message
    assert message["Subject"] == "[llmledger] REPORT: Weekly spend: search"
    assert "Top models: gpt-5-mini $9.10, gpt-5 $3.30" in message.get_body(("plain",)).get_content()
    related = next(part for part in message.walk() if part.get_content_type() == "multipart/related")
    html, image = related.get_payload()
    assert image.get_content_type() == "image/png"
    assert image.get_content() == PNG
    assert image.get_filename() == "spend.png"
    assert f'src="cid:{image["Content-ID"][1:-1]}"' in html.get_content()
    assert "<b>gpt-5-mini</b>" in html.get_content()
    assert replace(report, image=None).image is None  # the image is optional: the same report without it
    assert channels.deliver(channels.parse(email_channel(smtp)), replace(report, image=None), 5).ok
    assert all(p.get_content_type() != "image/png" for p in smtp.wait_for(2)[1].message.walk())
