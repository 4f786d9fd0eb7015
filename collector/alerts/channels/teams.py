"""Microsoft Teams (an incoming webhook or a Workflows webhook): one Adaptive Card, in the message shape Microsoft
documents for webhooks (`{"type": "message", "attachments": [{"contentType": "application/vnd.microsoft.card.adaptive",
"content": <AdaptiveCard>}]}`)."""

from __future__ import annotations

from typing import Any

from collector.alerts.channels.base import Config, Outcome, clip, post, url_channel
from collector.alerts.channels.message import Message

CARD_TYPE = "application/vnd.microsoft.card.adaptive"
SCHEMA = "http://adaptivecards.io/schemas/adaptive-card.json"
VERSION = "1.2"  # the version in Microsoft's webhook example; FactSet and Action.OpenUrl are older
_COLOURS = {"critical": "Attention", "warning": "Warning"}


def card(message: Message) -> dict[str, Any]:
    colour = "Good" if message.state == "resolved" else _COLOURS.get(message.severity, "Accent")
    body: list[dict[str, Any]] = [
        {"type": "TextBlock", "text": message.headline, "weight": "Bolder", "color": colour, "wrap": True},
        {"type": "TextBlock", "text": clip(message.title, 500), "size": "Medium", "weight": "Bolder", "wrap": True},
        {"type": "TextBlock", "text": message.summary, "wrap": True},
    ]
    if message.facts:
        body.append({"type": "FactSet", "facts": [{"title": name, "value": value} for name, value in message.facts]})
    if message.body:
        body.append({"type": "TextBlock", "text": message.body, "wrap": True})
    content: dict[str, Any] = {"$schema": SCHEMA, "type": "AdaptiveCard", "version": VERSION, "body": body}
    if message.link:
        content["actions"] = [{"type": "Action.OpenUrl", "title": "Open the dashboard", "url": message.link}]
    return {"type": "message", "attachments": [{"contentType": CARD_TYPE, "contentUrl": None, "content": content}]}


def send(config: Config, message: Message, timeout_s: float) -> Outcome:
    return post(config["url"], timeout_s, json=card(message))


KIND = url_channel("teams", send)
