"""A signed generic webhook: the webhook's JSON, with an HMAC-SHA256 signature a receiver checks to know the
collector sent it and to refuse a replay (docs/signed-webhooks.md: the scheme, and a verify function to copy).

    X-Llmledger-Timestamp: <unix time in milliseconds>
    X-Llmledger-Signature: v1=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>

Each attempt is signed afresh with a later timestamp (milliseconds, never the same twice in a process), so no two
attempts share a signature: a retry is never refused as a replay of an attempt the receiver saw and failed."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Mapping
from typing import Any

from collector.alerts.channels.base import (
    ChannelConfigError,
    ChannelKind,
    Config,
    Outcome,
    http_url,
    masked_position,
    only_fields,
    post,
    url_host,
)
from collector.alerts.channels.message import Message

TIMESTAMP_HEADER = "X-Llmledger-Timestamp"
SIGNATURE_HEADER = "X-Llmledger-Signature"
MIN_SECRET, MAX_SECRET = 16, 1000
_clock = threading.Lock()
_last_ms = 0


def parse(raw: Mapping[str, Any]) -> Config:
    only_fields(raw, ("url", "secret"))
    url = http_url(raw)
    secret = raw.get("secret")
    if masked_position(secret) is None and not (isinstance(secret, str) and MIN_SECRET <= len(secret) <= MAX_SECRET):
        raise ChannelConfigError(f"secret is required: a shared key of {MIN_SECRET} to {MAX_SECRET} characters")
    return {"type": "signed_webhook", "url": url, "secret": secret}


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """`v1=` and the hex HMAC-SHA256 of `<timestamp>.<body>` under the secret."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"v1={digest}"


def _timestamp() -> str:
    """Now in Unix milliseconds, later than any this process gave before (two attempts never sign alike)."""
    global _last_ms
    with _clock:
        _last_ms = max(time.time_ns() // 1_000_000, _last_ms + 1)
        return str(_last_ms)


def send(config: Config, message: Message, timeout_s: float) -> Outcome:
    body = json.dumps(message.json(), separators=(",", ":")).encode()
    timestamp = _timestamp()
    headers = {
        "content-type": "application/json",
        TIMESTAMP_HEADER: timestamp,
        SIGNATURE_HEADER: signature(config["secret"], timestamp, body),
    }
    return post(config["url"], timeout_s, content=body, headers=headers)


KIND = ChannelKind("signed_webhook", parse, secrets=("url", "secret"), host=url_host, send=send, bound=("url",))
