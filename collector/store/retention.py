"""`--retention-days N`: delete raw calls older than N whole UTC days, at start and then hourly.

The daily rollup (spend by day), alert rules, events and delivery attempts are kept; the hourly rollup's hours go
with their calls (collector/store/hourly.py).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from collector.metrics import Metrics
from collector.schedule import Periodic
from collector.store import latency_hourly, readiness_rollup
from collector.store.file import Store

log = logging.getLogger("llmledger.collector")
INTERVAL_S = 3600.0


def cutoff(now: datetime, days: int) -> datetime:
    """UTC midnight `days` days before today: whole days go, so no day is left half deleted."""
    today = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return today - timedelta(days=days)


def delete_before(store: Store, before: datetime) -> int:
    """Delete raw calls that started before `before` (a UTC midnight), and their days or hours of the readiness,
    hourly and latency rollups, in one transaction; returns how many calls went."""
    with store.calls_transaction() as con:
        (deleted,) = con.execute("DELETE FROM llm_calls WHERE start_time < ?", [before]).fetchone()
        readiness_rollup.delete_before(con, before)  # derived from the raw calls only (unlike llm_calls_daily)
        con.execute("DELETE FROM llm_calls_hourly WHERE hour < ?", [before])
        latency_hourly.delete_before(con, before)
    return int(deleted)


class Retention:
    def __init__(
        self,
        store: Store,
        days: int,
        metrics: Metrics,
        interval_s: float = INTERVAL_S,
    ) -> None:
        if days < 1:
            raise ValueError("--retention-days must be at least 1")
        self.store = store
        self.days = days
        self.metrics = metrics
        self.interval_s = interval_s
        self._loop = Periodic(
            "retention", interval_s, lambda: self.run_once(datetime.now(tz=UTC)), is_leader=store.leader_check
        )

    def start(self) -> None:
        self._loop.start()

    def stop(self) -> None:
        self._loop.stop()

    def run_once(self, now: datetime) -> int:
        before = cutoff(now, self.days)
        deleted = delete_before(self.store, before)
        self.metrics.add("llmledger_rows_deleted_by_retention_total", deleted)
        if deleted:
            log.info("retention: deleted %d raw calls before %s (daily rollups kept)", deleted, before.date())
        return deleted
