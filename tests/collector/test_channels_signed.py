"""The signed webhook, checked by a receiver that runs the verify function docs/signed-webhooks.md gives to copy."""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx2
import pytest

from llmledger import semconv as sc
from tests.collector.receivers import Receiver, Request
from tests.collector.test_alerts import RULE, evaluate, send
from tests.collector_harness import RunningCollector

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
SECRET = "shared-secret-for-signing-0123"
DOCS = Path(__file__).resolve().parents[2] / "docs" / "signed-webhooks.md"


def documented_verify() -> Callable[[str, str, str, bytes, set[str]], bool]:
    """The page's Python block, run as a receiver would paste it."""
    (code,) = re.findall(r"```python\n(.*?)```", DOCS.read_text(), re.S)
    namespace: dict[str, object] = {}
    exec(code, namespace)
    return namespace["verify"]  # type: ignore[return-value]


class SignedReceiver(Receiver):
    def __init__(self, statuses: list[int] | None = None) -> None:
        verify, seen = documented_verify(), set()

        def check(request: Request) -> list[str]:
            timestamp = request.headers.get("x-llmledger-timestamp", "")
            signature = request.headers.get("x-llmledger-signature", "")
            return [] if verify(SECRET, timestamp, signature, request.body, seen) else ["refused"]

        super().__init__(check, statuses=statuses, refuse_status=401)


@pytest.fixture
def collector(tmp_path: Path) -> Iterator[RunningCollector]:
    running = RunningCollector(tmp_path / "signed.duckdb", "--alert-interval", "3600")
    running.collector.notifier.base_delay_s = 0.01
    yield running
    running.stop()


def sign(timestamp: str, body: bytes) -> str:
    return "v1=" + hmac.new(SECRET.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def test_a_signed_alert_is_verified_and_a_replay_refused(collector: RunningCollector) -> None:
    receiver = SignedReceiver()
    try:
        channel = {"type": "signed_webhook", "url": f"{receiver.base}/hooks/signed", "secret": SECRET}
        rule_id = collector.http.post("/api/v1/alert-rules", json={**RULE, "channels": [channel]}).json()["id"]
        send(collector, 4, NOW, **{sc.ERROR_TYPE: "RateLimitError"})
        assert evaluate(collector, NOW) == [(rule_id, "firing")]
        (request,) = receiver.wait_for(1)
        assert receiver.problems == []
        body = request.json()
        assert (body["rule_id"], body["state"], body["title"], body["time"]) == (
            rule_id,
            "firing",
            "errors on search",
            NOW.isoformat(),
        )
        assert request.headers["content-type"] == "application/json"
        assert abs(int(request.headers["x-llmledger-timestamp"]) / 1000 - time.time()) < 300

        def post(headers: dict[str, str], content: bytes) -> int:
            return httpx2.post(f"{receiver.base}/hooks/signed", content=content, headers=headers).status_code

        headers = {k: request.headers[k] for k in ("content-type", "x-llmledger-timestamp", "x-llmledger-signature")}
        assert post(headers, request.body) == 401  # the same request again: a replay
        assert post(headers, request.body.replace(b"firing", b"resolved")) == 401  # changed on the way
        old = str(int((time.time() - 301) * 1000))  # signed right, but over 5 minutes old
        assert (
            post(
                {**headers, "x-llmledger-timestamp": old, "x-llmledger-signature": sign(old, request.body)},
                request.body,
            )
            == 401
        )
        fresh = str(int(time.time() * 1000))  # signed right, now: accepted
        assert (
            post(
                {**headers, "x-llmledger-timestamp": fresh, "x-llmledger-signature": sign(fresh, request.body)},
                request.body,
            )
            == 200
        )
        assert receiver.problems == ["refused"] * 3
    finally:
        receiver.close()


def test_a_retry_is_signed_afresh_so_it_is_no_replay(collector: RunningCollector) -> None:
    """The receiver verified the first attempt (and noted its signature), then failed with a 500: the retry passes."""
    receiver = SignedReceiver(statuses=[500])
    try:
        channel = {"type": "signed_webhook", "url": f"{receiver.base}/hooks/signed", "secret": SECRET}
        rule_id = collector.http.post("/api/v1/alert-rules", json={**RULE, "channels": [channel]}).json()["id"]
        assert collector.http.post(f"/api/v1/alert-rules/{rule_id}/test").status_code == 202
        (request,) = receiver.wait_for(1)
        assert request.json()["state"] == "test"
        assert receiver.problems == []
        deadline = time.monotonic() + 10
        while len(attempts := collector.get("/api/v1/notification-attempts")["attempts"]) < 2:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert sorted((a["attempt"], a["ok"], a["http_status"]) for a in attempts) == [(1, False, 500), (2, True, 200)]
    finally:
        receiver.close()
