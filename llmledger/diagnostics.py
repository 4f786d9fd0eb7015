"""Telemetry never breaks the app: our own failures are logged once per place and counted.

Under tests (`strict = True`) they are re-raised instead, so that bugs surface.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter

log = logging.getLogger("llmledger")

strict = False
_lock = threading.Lock()
_counts: Counter[str] = Counter()


def internal_error(where: str, exc: BaseException) -> None:
    """Record a failure inside llmledger's own code; re-raise only in strict mode."""
    with _lock:
        _counts[where] += 1
        first = _counts[where] == 1
    if first:
        log.warning("llmledger internal error in %s (logged once, counted after): %r", where, exc, exc_info=exc)
    if strict:
        raise exc


def internal_error_counts() -> dict[str, int]:
    """How many internal errors each place has had in this process."""
    with _lock:
        return dict(_counts)
