"""Starting local servers: a free loopback port for one, and waiting for it to answer (the demo, tests and
benchmarks start collectors, dashboards, PostgreSQL and HAProxy)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable

import httpx2


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now (another process may still take it before the server)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_ok(
    url: str,
    timeout: float = 30.0,
    *,
    interval: float = 0.1,
    stop: threading.Event | None = None,
    alive: Callable[[], bool] | None = None,
    any_status: bool = False,
) -> bool:
    """True once GET `url` answers 200 (with `any_status`, answers at all); False after `timeout`, when `stop` is
    set or `alive()` turns false."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not (stop is not None and stop.is_set()):
        try:
            if httpx2.get(url, timeout=2).status_code == 200 or any_status:
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
