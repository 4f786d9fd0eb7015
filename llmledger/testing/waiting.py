"""Waiting for a local server to answer (the demo, tests and benchmarks start collectors and dashboards)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import httpx2


def wait_until_ok(
    url: str,
    timeout: float = 30.0,
    *,
    interval: float = 0.1,
    stop: threading.Event | None = None,
    alive: Callable[[], bool] | None = None,
) -> bool:
    """True once GET `url` answers 200; False after `timeout`, when `stop` is set or `alive()` turns false."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not (stop is not None and stop.is_set()):
        try:
            if httpx2.get(url, timeout=2).status_code == 200:
                return True
        except httpx2.TransportError:
            pass
        if alive is not None and not alive():
            return False
        if stop is not None:
            stop.wait(interval)
        else:
            time.sleep(interval)
    return False
