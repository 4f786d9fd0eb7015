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
_errors: list[tuple[str, BaseException]] = []


def internal_error(where: str, exc: BaseException, *, reraise: bool = True) -> None:
    """Record a failure inside llmledger's own code; re-raise only in strict mode (and when asked to)."""
    with _lock:
        _counts[where] += 1
        first = _counts[where] == 1
        _errors.append((where, exc))
        del _errors[:-100]
    if first:
        log.warning("llmledger internal error in %s (logged once, counted after): %r", where, exc, exc_info=exc)
    if strict and reraise:
        raise exc


def count(event: str) -> None:
    """Count something that is not an error but must not pass silently (e.g. a dropped span)."""
    with _lock:
        _counts[event] += 1
        first = _counts[event] == 1
    if first:
        log.warning("llmledger: %s (logged once, counted after)", event)


def recent_errors() -> list[tuple[str, BaseException]]:
    """The last internal errors (tests check that the background thread had none)."""
    with _lock:
        return list(_errors)


def internal_error_counts() -> dict[str, int]:
    """How many internal errors each place has had in this process."""
    with _lock:
        return dict(_counts)
