"""A Slack incoming webhook: one mrkdwn line (headline, title, summary, a link to the dashboard)."""

from __future__ import annotations

from collector.alerts.channels.base import Config, Outcome, post, url_channel
from collector.alerts.channels.message import Message

_EMOJI = {"firing": ":rotating_light:", "resolved": ":white_check_mark:", "test": ":test_tube:"}


def _escape(value: str) -> str:
    """Slack reads `<`, `>` and `&` as markup (links, mentions): a rule's name or a group value must not."""
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def text(message: Message) -> str:
    emoji = ":warning:" if message.severity == "warning" else _EMOJI.get(message.state, ":bar_chart:")
    line = f"{emoji} {message.headline} *{_escape(message.title)}*: {_escape(message.summary)}"
    if message.body:
        line += "\n" + _escape(message.body)
    return line + (f" <{message.link}|Open the dashboard>" if message.link else "")


def send(config: Config, message: Message, timeout_s: float) -> Outcome:
    return post(config["url"], timeout_s, json={"text": text(message)})


KIND = url_channel("slack", send)
