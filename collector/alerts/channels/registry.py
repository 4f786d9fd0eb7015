"""Every channel type by name: a channel's config checked, masked, matched with the stored one, and delivered."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from collector.alerts.channels import discord, mail, pagerduty, signed_webhook, slack, teams, webhook
from collector.alerts.channels.base import ChannelConfigError, ChannelKind, Config, Outcome, masked_position
from collector.alerts.channels.message import Message

KINDS: dict[str, ChannelKind] = {
    kind.name: kind
    for kind in (webhook.KIND, slack.KIND, mail.KIND, pagerduty.KIND, teams.KIND, discord.KIND, signed_webhook.KIND)
}
TYPES = tuple(KINDS)
DEFAULT_TIMEOUT_S = 10.0


def parse(raw: Any) -> Config:
    """The config to store for one channel from the API's JSON, or ChannelConfigError saying what is wrong."""
    if not isinstance(raw, Mapping) or raw.get("type") not in KINDS:
        raise ChannelConfigError(f"type must be one of {', '.join(TYPES)}")
    return KINDS[raw["type"]].parse(raw)


def masked(config: Config, position: int) -> Config:
    """A stored channel as the API shows it: its secrets masked with its position (1-based) in the rule."""
    return KINDS[config["type"]].masked(config, position)


def keep_stored_secrets(config: Config, stored: list[Config]) -> Config:
    """A channel sent back as it was read keeps its secrets: a mask stands for the stored channel at its position,
    which must be of the same type and show the same mask, and whose secrets stay with the server they were given
    for (the `bound` fields). A mask that stands for nothing is refused, so a mask is never stored."""
    kind = KINDS[config["type"]]
    masks = [name for name in kind.secrets if masked_position(config.get(name)) is not None]
    if not masks:
        return config
    positions = {masked_position(config[name]) for name in masks}
    position = positions.pop() if len(positions) == 1 else 0
    old = stored[position - 1] if 1 <= position <= len(stored) else None
    shown = kind.masked(old, position) if old is not None and old["type"] == kind.name else None
    for name in masks:
        if shown is None or shown.get(name) != config[name]:
            label = "URL" if name == "url" else name
            raise ChannelConfigError(f"{config[name]} is a masked {label} this rule does not have; give the {label} "
                                     "in full")  # fmt: skip
    assert old is not None
    kept = {**config, **{name: old[name] for name in masks}}
    for name in kind.bound:
        if kept.get(name) != old.get(name):
            raise ChannelConfigError(f"{masks[0]} is masked, which keeps the stored one only for the same {name}: "
                                     f"give the {masks[0]} again to use a new {name}")  # fmt: skip
    return kept


def host(config: Config) -> str | None:
    """What a delivery attempt records of the channel: its server's host name, never a URL's path or a key."""
    return KINDS[config["type"]].host(config)


def deliver(config: Config, message: Message, timeout_s: float = DEFAULT_TIMEOUT_S) -> Outcome:
    """One attempt to deliver `message` to the channel `config` (as stored): `(ok, http_status, error)`. Retries,
    claims and attempt records are the caller's (collector/alerts/notify.py for alerts)."""
    return KINDS[config["type"]].send(config, message, timeout_s)
