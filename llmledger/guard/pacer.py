"""Rate-limit pacing: from the `x-ratelimit-*` headers of the last response, hold a call that would find no
requests or tokens left until the window resets (at most `pace_max_wait_s`), instead of letting it hit a 429.

Approximate by nature: OpenAI's windows are rolling, and other processes share the limit. Each admitted call takes
one request and its estimated tokens from what the last response said remained.
"""

from __future__ import annotations

import functools
import re
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass

_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


@functools.lru_cache(maxsize=512)  # the same few durations come back with every response
def parse_reset(text: str) -> float | None:
    """OpenAI's reset durations: `1s`, `6m0s`, `20ms`, `1h2m3.5s`."""
    parts = _DURATION.findall(text.strip())
    if not parts or "".join(number + unit for number, unit in parts) != text.strip():
        return None
    return sum(float(number) * _SECONDS[unit] for number, unit in parts)


@dataclass(slots=True)
class _Window:
    """What the last response said, kept as sent: its reset durations are read only when a call would wait."""

    requests_left: float | None = None
    requests_reset: tuple[float, str | bytes | None] = (0.0, None)  # (the clock when said, x-ratelimit-reset-requests)
    tokens_left: float | None = None
    tokens_reset: tuple[float, str | bytes | None] = (0.0, None)


def _reset_at(reset: tuple[float, str | bytes | None]) -> float:
    said_at, duration = reset
    return said_at + (parse_reset(_text(duration)) or 0.0)


class Pacer:
    def __init__(self, max_wait_s: float, clock: object = time.monotonic) -> None:
        self.max_wait_s = max_wait_s
        self._clock = clock
        self._windows: dict[str, _Window] = {}
        self._lock = threading.Lock()

    def wait_for(self, key: str, tokens: int) -> float:
        """Seconds to hold this call (0: send now); takes the call's request and tokens from what remains."""
        window = self._windows.get(key)
        if window is None:
            return 0.0
        with self._lock:
            wait = 0.0
            if window.requests_left is not None:
                if window.requests_left < 1:
                    wait = _reset_at(window.requests_reset) - self._clock()  # type: ignore[operator]
                window.requests_left -= 1
            if window.tokens_left is not None:
                if window.tokens_left < tokens:
                    wait = max(wait, _reset_at(window.tokens_reset) - self._clock())  # type: ignore[operator]
                window.tokens_left -= tokens
        return 0.0 if wait <= 0 else min(wait, self.max_wait_s)

    def observe(self, key: str, headers: Mapping[str, str]) -> None:
        """What the last response said remains, and when each window resets."""
        requests_left, tokens_left, requests_reset, tokens_reset = _ratelimit_headers(headers)
        requests, tokens = _number(requests_left), _number(tokens_left)
        if requests is None and tokens is None:
            return
        now = self._clock()  # type: ignore[operator]
        with self._lock:
            window = self._windows.get(key) or self._windows.setdefault(key, _Window())
            if requests is not None:
                window.requests_left, window.requests_reset = requests, (now, requests_reset)
            if tokens is not None:
                window.tokens_left, window.tokens_reset = tokens, (now, tokens_reset)


_HEADERS = ("x-ratelimit-remaining-requests", "x-ratelimit-remaining-tokens", "x-ratelimit-reset-requests",
            "x-ratelimit-reset-tokens")  # fmt: skip
_HEADER_INDEX = {name.encode(): index for index, name in enumerate(_HEADERS)}


def _ratelimit_headers(headers: Mapping[str, str]) -> list[str | bytes | None]:
    """The four headers' values, in `_HEADERS`' order (None: absent). httpx's `Headers` keeps (name, lower-cased
    name, value) triples: one pass over them costs a fraction of four case-insensitive lookups (each lower-cases,
    encodes, scans every header and decodes), which would be most of the guard's time on the app's thread. Any
    other mapping (or another layout) is asked by name."""
    found: list[str | bytes | None] = [None, None, None, None]
    triples = getattr(headers, "_list", None)
    if type(triples) is list:
        try:
            for _name, lower, value in triples:
                index = _HEADER_INDEX.get(lower)
                if index is not None and found[index] is None:
                    found[index] = value
        except (TypeError, ValueError):  # not httpx's triples after all
            pass
        else:
            return found
    return [headers.get(name) for name in _HEADERS]


def _text(value: str | bytes | None) -> str:
    if value is None:
        return ""
    return value.decode("latin-1") if isinstance(value, bytes) else value


def _number(value: str | bytes | None) -> float | None:
    if value is None:
        return None
    try:
        return int(value)  # what OpenAI sends, and quicker to read than a float
    except ValueError:
        pass
    try:
        return float(value)
    except ValueError:
        return None
