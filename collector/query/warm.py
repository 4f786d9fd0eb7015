"""Warming on start: the queries of a dashboard's first visit, run once in the background when the collector starts.

A cold server's first answers pay for reading the file's blocks into DuckDB's buffer pool, building its catalog
caches and importing the price data the breakdowns use; run here, before anyone opens the dashboard, the first
visitor finds them warm. The answers themselves are thrown away, and a failure only costs the warmth (logged).
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import duckdb

from collector.query import reads, reports, values
from collector.query.filters import Filters

log = logging.getLogger("llmledger.collector")

# What the dashboard's sidebar (filter choices over 90 days) and its default page (Overview, last 24 hours) ask for.
SIDEBAR_GROUPS = ("service", "environment", "team", "model", "feature")
OVERVIEW_SERIES = ("cost_usd", "requests", "error_rate", "latency_p95_ms")
SIDEBAR_LOOKBACK = timedelta(days=90)


def first_visit(now: datetime, rates_for: reports.RatesFor) -> list[Callable[[duckdb.DuckDBPyConnection], Any]]:
    """The reads of a first visit at `now`, each taking a reading cursor."""
    day = Filters(start=now - timedelta(days=1), end=now)
    before = Filters(start=now - timedelta(days=2), end=now - timedelta(days=1))
    midnight = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    month = Filters(start=midnight.replace(day=1), end=now)
    since = Filters(start=midnight - SIDEBAR_LOOKBACK)
    return [
        lambda con: reads.calls(con, Filters(), 1),
        *(lambda con, group=group: values.values(con, since, group) for group in SIDEBAR_GROUPS),
        lambda con: reports.breakdown(con, day, "model", reports.MAX_GROUPS, rates_for),  # Spend's first card
        lambda con: reads.summary(con, day),
        lambda con: reads.summary(con, before),
        lambda con: reads.summary(con, Filters(start=midnight, end=now)),
        lambda con: reads.summary(con, month),
        *(lambda con, metric=metric: reads.timeseries(con, day, metric, "auto", None) for metric in OVERVIEW_SERIES),
    ]


class Warmup:
    """The first visit's reads, once, on a daemon thread with its own cursor; `stop()` interrupts what is left."""

    def __init__(self, reader: Callable[[], duckdb.DuckDBPyConnection], rates_for: reports.RatesFor) -> None:
        self._reader = reader
        self._rates_for = rates_for
        self._stopping = threading.Event()
        self._con: duckdb.DuckDBPyConnection | None = None
        self._thread = threading.Thread(target=self._run, name="warm-queries", daemon=True)

    def start(self) -> None:
        self._con = self._reader()
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._con is not None and self._thread.is_alive():
            with contextlib.suppress(duckdb.Error):  # the run ended (and closed its cursor) since we looked
                self._con.interrupt()
            self._thread.join(timeout=30)

    def _run(self) -> None:
        con = self._con
        assert con is not None
        try:
            for read in first_visit(datetime.now(tz=UTC), self._rates_for):
                if self._stopping.is_set():
                    return
                read(con)
        except Exception:  # a query that fails here fails for the visitor too, who is told; here it only warms
            if not self._stopping.is_set():
                log.warning("warming the first page's queries failed", exc_info=True)
        finally:
            con.close()
