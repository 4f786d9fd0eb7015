"""Reads the collector's enforced budgets and their spend (`GET /v1/guard/budgets`) on a background thread."""

from __future__ import annotations

import json
import logging
import threading
import urllib.request
from collections.abc import Mapping

from llmledger import diagnostics
from llmledger.guard.budgets import BudgetBook, parse_budgets

log = logging.getLogger("llmledger")
_TIMEOUT_S = 5.0


class BudgetPoller:
    def __init__(self, book: BudgetBook, url: str, headers: Mapping[str, str], interval_s: float) -> None:
        self.book = book
        self.url = url
        self.headers = dict(headers)
        self.interval_s = interval_s
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()

    def start(self) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="llmledger-guard", daemon=True)
                self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def poll(self) -> bool:
        """Fetch once; False (counted, last state kept) when the collector can't be read."""
        request = urllib.request.Request(self.url, headers={**self.headers, "Accept": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=_TIMEOUT_S) as response:
                as_of, budgets = parse_budgets(json.loads(response.read()))
        except Exception as exc:  # noqa: BLE001 - an unreachable or odd collector never reaches the app
            if self._stop.is_set():  # stopped while the request was out (uninstrumented): nothing to report
                return False
            diagnostics.count("guard: collector budgets unreadable")
            log.debug("guard: reading budgets from %s failed: %s", self.url, exc)
            return False
        self.book.apply(as_of, budgets)
        return True

    def _run(self) -> None:
        while not self._stop.is_set():
            self.poll()
            self._stop.wait(self.interval_s)
