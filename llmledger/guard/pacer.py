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


@dataclass
class _Window:
    requests_left: float | None = None
    requests_reset_at: float = 0.0
    tokens_left: float | None = None
    tokens_reset_at: float = 0.0


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
            now = self._clock()  # type: ignore[operator]
            wait = 0.0
            if window.requests_left is not None:
                if window.requests_left < 1 and now < window.requests_reset_at:
                    wait = window.requests_reset_at - now
                window.requests_left -= 1
            if window.tokens_left is not None:
                if window.tokens_left < tokens and now < window.tokens_reset_at:
                    wait = max(wait, window.tokens_reset_at - now)
                window.tokens_left -= tokens
            return min(wait, self.max_wait_s)

    def observe(self, key: str, headers: Mapping[str, str]) -> None:
        """What the last response said remains, and when each window resets."""
        requests = _number(headers.get("x-ratelimit-remaining-requests"))
        tokens = _number(headers.get("x-ratelimit-remaining-tokens"))
        if requests is None and tokens is None:
            return
        now = self._clock()  # type: ignore[operator]
        with self._lock:
            window = self._windows.setdefault(key, _Window())
            if requests is not None:
                window.requests_left = requests
                window.requests_reset_at = now + (parse_reset(headers.get("x-ratelimit-reset-requests", "")) or 0.0)
            if tokens is not None:
                window.tokens_left = tokens
                window.tokens_reset_at = now + (parse_reset(headers.get("x-ratelimit-reset-tokens", "")) or 0.0)


def _number(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        return float(text)
    except ValueError:
        return None
