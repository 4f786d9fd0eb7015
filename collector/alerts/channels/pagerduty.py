"""PagerDuty, Events API v2: "firing" triggers an alert and "resolved" resolves it, under one dedup key per rule and
group; a test triggers an `info` alert and resolves it at once. The routing (integration) key is the secret."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from collector.alerts.channels.base import (
    ChannelConfigError,
    ChannelKind,
    Config,
    Outcome,
    clip,
    http_url,
    masked_position,
    only_fields,
    post,
)
from collector.alerts.channels.message import Message

EVENTS_URL = "https://events.pagerduty.com/v2/enqueue"
SEVERITIES = ("critical", "error", "warning", "info")  # the Events API's; ours are critical, warning and info
MAX_SUMMARY, MAX_SOURCE, MAX_DEDUP_KEY = 1024, 255, 255
# An integration key is 32 characters; accept the same alphabet a little more loosely, never a URL or a space.
_ROUTING_KEY = re.compile(r"^[A-Za-z0-9_-]{20,128}$")


def parse(raw: Mapping[str, Any]) -> Config:
    only_fields(raw, ("routing_key", "url"))
    key = raw.get("routing_key")
    if masked_position(key) is None and not (isinstance(key, str) and _ROUTING_KEY.match(key)):
        raise ChannelConfigError("routing_key is required: the Events API v2 integration key (32 characters)")
    config: Config = {"type": "pagerduty", "routing_key": key}
    if (url := http_url(raw, required=False)) is not None:
        config["url"] = url  # another events endpoint (a region's, a proxy); absent: PagerDuty's own
    return config


def host(config: Config) -> str | None:
    return urlsplit(config.get("url") or EVENTS_URL).hostname


def events(config: Config, message: Message) -> list[dict[str, Any]]:
    """The Events API v2 bodies for `message`: a trigger, a resolve, or (a test) both."""
    assert message.dedup_key is not None
    key = {"routing_key": config["routing_key"], "dedup_key": message.dedup_key}
    resolve = {**key, "event_action": "resolve"}
    if message.state == "resolved":
        return [resolve]
    trigger: dict[str, Any] = {
        **key,
        "event_action": "trigger",
        "payload": {
            "summary": clip(f"{message.headline}: {message.title}: {message.summary}", MAX_SUMMARY),
            "source": clip(message.source, MAX_SOURCE),
            "severity": message.severity if message.severity in SEVERITIES else "critical",
            "custom_details": message.json(),
        },
        "client": "llmledger",
    }
    if message.link:
        trigger["client_url"] = message.link
        trigger["links"] = [{"href": message.link, "text": "Open the dashboard"}]
    return [trigger, resolve] if message.state == "test" else [trigger]


def send(config: Config, message: Message, timeout_s: float) -> Outcome:
    if message.dedup_key is None:
        return Outcome(False, None, "PagerDuty takes alerts only: this message opens or closes none")
    outcome = Outcome(False)
    for event in events(config, message):
        outcome = post(config.get("url") or EVENTS_URL, timeout_s, json=event)
        if not outcome.ok:
            break
    return outcome


KIND = ChannelKind("pagerduty", parse, secrets=("routing_key", "url"), host=host, send=send, bound=("url",))
