"""`--retention-days N`: delete raw calls older than N whole UTC days, at start and then hourly.

The daily rollup (spend by day), alert rules, events and delivery attempts are kept.
"""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime, timedelta

from collector.metrics import Metrics
from collector.store import Store

log = logging.getLogger("llmledger.collector")
INTERVAL_S = 3600.0


def cutoff(now: datetime, days: int) -> datetime:
    """UTC midnight `days` days before today: whole days go, so no day is left half deleted."""
    today = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return today - timedelta(days=days)


def delete_before(store: Store, before: datetime) -> int:
    """Delete raw calls that started before `before` in one transaction; returns how many went."""
    with store.transaction() as con:
        (deleted,) = con.execute("DELETE FROM llm_calls WHERE start_time < ?", [before]).fetchone()
    return int(deleted)


class Retention:
    def __init__(self, store: Store, days: int, metrics: Metrics, interval_s: float = INTERVAL_S) -> None:
        if days < 1:
            raise ValueError("--retention-days must be at least 1")
        self.store = store
        self.days = days
        self.metrics = metrics
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="llmledger-retention", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(30)

    def run_once(self, now: datetime) -> int:
        before = cutoff(now, self.days)
        deleted = delete_before(self.store, before)
        self.metrics.add("llmledger_rows_deleted_by_retention_total", deleted)
        if deleted:
            log.info("retention: deleted %d raw calls before %s (daily rollups kept)", deleted, before.date())
        return deleted

    def _run(self) -> None:
        while True:
            try:
                self.run_once(datetime.now(tz=UTC))
            except Exception:  # a failed pass is logged; the next one runs anyway
                log.exception("retention pass failed")
            if self._stop.wait(self.interval_s):
                return
