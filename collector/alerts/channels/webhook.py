"""A generic JSON webhook: the message's JSON (an alert's payload) POSTed to a URL."""

from __future__ import annotations

from collector.alerts.channels.base import Config, Outcome, post, url_channel
from collector.alerts.channels.message import Message


def send(config: Config, message: Message, timeout_s: float) -> Outcome:
    return post(config["url"], timeout_s, json=message.json())


KIND = url_channel("webhook", send)
