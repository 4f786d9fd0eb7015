"""Notification channels: one module per channel (webhook, slack, mail, pagerduty, teams, discord, signed_webhook),
each checking its config, masking its secrets and making one delivery attempt; registry.py dispatches by type."""

from collector.alerts.channels.base import ChannelConfigError, Outcome
from collector.alerts.channels.message import Image, Message
from collector.alerts.channels.registry import TYPES, deliver, host, keep_stored_secrets, masked, parse

__all__ = [
    "TYPES",
    "ChannelConfigError",
    "Image",
    "Message",
    "Outcome",
    "deliver",
    "host",
    "keep_stored_secrets",
    "masked",
    "parse",
]
