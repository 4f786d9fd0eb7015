"""What every channel module provides (a `ChannelKind`), and the parts they share: config checks, masks, HTTP."""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple
from urllib.parse import urlsplit

import httpx2

from collector.alerts.channels.message import Message

MASK = "•••"
_MASKED = re.compile(r"•••(\d+)$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
MAX_TEXT = 1000


class ChannelConfigError(ValueError):
    """A channel's configuration is wrong; the message names the field and what is wrong with it."""


class Outcome(NamedTuple):
    """One delivery attempt: whether it arrived, the HTTP status if there was one, and what went wrong (never a
    secret: an exception's type, an HTTP or SMTP code)."""

    ok: bool
    http_status: int | None = None
    error: str | None = None


Config = dict[str, Any]


@dataclass(frozen=True)
class ChannelKind:
    """One channel type: its config checked, shown masked, and one attempt to deliver a message to it."""

    name: str
    parse: Callable[[Mapping[str, Any]], Config]  # the stored config, or ChannelConfigError
    secrets: tuple[str, ...]  # fields never shown: the API returns them masked
    host: Callable[[Config], str | None]  # what an attempt records in place of the secret URL
    send: Callable[[Config, Message, float], Outcome]  # one attempt, within the timeout (seconds)
    # A masked secret sent back keeps the stored one only while these fields are unchanged, so a kept secret never
    # goes to a new server (a URL secret carries its host in its mask instead).
    bound: tuple[str, ...] = ()

    def masked(self, config: Config, position: int) -> Config:
        """The config as the API shows it: each secret replaced by its mask (a URL keeps its scheme and host)."""
        shown = dict(config)
        for name in self.secrets:
            if config.get(name) is not None:
                shown[name] = mask(config[name], position, url=name == "url")
        return shown


def mask(secret: str, position: int, *, url: bool = False) -> str:
    """`https://hooks.slack.com/•••1` for a URL, `•••1` otherwise: the channel's position, what a mask sent back
    stands for."""
    if not url:
        return f"{MASK}{position}"
    parts = urlsplit(secret)
    return f"{parts.scheme}://{parts.hostname}/{MASK}{position}"


def masked_position(value: Any) -> int | None:
    """The position a masked value stands for (0 when it has a mask but no position), None if it is no mask."""
    if not isinstance(value, str) or MASK not in value:
        return None
    found = _MASKED.search(value)
    return int(found.group(1)) if found else 0


def only_fields(raw: Mapping[str, Any], allowed: tuple[str, ...]) -> None:
    if unknown := sorted(set(raw) - {"type", *allowed}):
        raise ChannelConfigError(f"{unknown[0]!r} is not a field of a {raw['type']} channel ({', '.join(allowed)})")


def text(raw: Mapping[str, Any], name: str, *, required: bool = True, limit: int = MAX_TEXT) -> str | None:
    """A one-line string field (no control characters: they would split an e-mail header), or None if absent."""
    value = raw.get(name)
    if value in (None, "") and not required:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ChannelConfigError(f"{name} is required and must be a non-empty string")
    if len(value) > limit or _CONTROL.search(value):
        raise ChannelConfigError(f"{name} must be one line of at most {limit} characters")
    return value.strip()


def http_url(raw: Mapping[str, Any], name: str = "url", *, required: bool = True) -> str | None:
    value = raw.get(name)
    if value in (None, "") and not required:
        return None
    parts = urlsplit(value) if isinstance(value, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname or _CONTROL.search(value):
        raise ChannelConfigError(f"{name} must be an http(s) URL")
    return value


def url_host(config: Config) -> str | None:
    return urlsplit(config["url"]).hostname


def clip(value: str, limit: int) -> str:
    """`value` cut to `limit` characters, an ellipsis marking the cut."""
    return value if len(value) <= limit else value[: limit - 1] + "…"


class _HideChannelUrls(logging.Filter):
    """httpx2 logs every request's URL (INFO); while a channel posts, this thread's records show its host only."""

    posting = threading.local()

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(self.posting, "active", False) and isinstance(record.args, tuple):
            record.args = tuple(mask(str(arg), 0, url=True) if isinstance(arg, httpx2.URL) else arg
                                for arg in record.args)  # fmt: skip
        return True


_HIDE = _HideChannelUrls()
logging.getLogger("httpx2").addFilter(_HIDE)


def post(url: str, timeout_s: float, **request: Any) -> Outcome:
    """POST (`json=` or `content=` and `headers=`); a 2xx answer is delivered. Only the exception's type is kept:
    its text can hold the secret URL."""
    _HIDE.posting.active = True
    try:
        response = httpx2.post(url, timeout=timeout_s, **request)
    except httpx2.HTTPError as exc:
        return Outcome(False, None, type(exc).__name__)
    finally:
        _HIDE.posting.active = False
    status = response.status_code
    return Outcome(True, status) if 200 <= status < 300 else Outcome(False, status, f"HTTP {status}")


def url_channel(name: str, send: Callable[[Config, Message, float], Outcome]) -> ChannelKind:
    """A channel configured by its URL alone, which is its secret (Slack, Teams and Discord webhooks, ours)."""

    def parse(raw: Mapping[str, Any]) -> Config:
        only_fields(raw, ("url",))
        return {"type": name, "url": http_url(raw)}

    return ChannelKind(name, parse, secrets=("url",), host=url_host, send=send)
