"""A Discord webhook: a short `content` line and one embed, within Discord's limits (content 2,000 characters; an
embed's title 256, description 4,096, 25 fields of 256/1,024, 6,000 in all), and no mentions."""

from __future__ import annotations

from typing import Any

from collector.alerts.channels.base import Config, Outcome, clip, post, url_channel
from collector.alerts.channels.message import Message

MAX_CONTENT = 2000
_COLOURS = {"critical": 0xD62728, "warning": 0xFF9900}
_RESOLVED, _OTHER = 0x2CA02C, 0x1F77B4
# Kept well inside the 6,000-character embed total: 256 + 2,000 + 10 x (64 + 256) + the footer.
_MAX_DESCRIPTION, _MAX_FIELDS, _MAX_NAME, _MAX_VALUE = 2000, 10, 64, 256


def body(message: Message) -> dict[str, Any]:
    colour = _RESOLVED if message.state == "resolved" else _COLOURS.get(message.severity, _OTHER)
    description = message.summary + (f"\n\n{message.body}" if message.body else "")
    embed: dict[str, Any] = {
        "title": clip(message.title, 256),
        "description": clip(description, _MAX_DESCRIPTION),
        "color": colour,
        "fields": [
            {"name": clip(name, _MAX_NAME), "value": clip(value, _MAX_VALUE), "inline": True}
            for name, value in message.facts[:_MAX_FIELDS]
        ],
        "footer": {"text": "llmledger"},
    }
    if message.link:
        embed["url"] = message.link
    return {
        "content": clip(f"**{message.headline}**: {message.title}", MAX_CONTENT),
        "embeds": [embed],
        "allowed_mentions": {"parse": []},  # a rule's name or a group value never pings @everyone
    }


def send(config: Config, message: Message, timeout_s: float) -> Outcome:
    return post(config["url"], timeout_s, json=body(message))


KIND = url_channel("discord", send)
