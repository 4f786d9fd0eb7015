"""What every router needs from the running collector (`AppState`, built once by the server), and its reads."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import duckdb
from starlette.concurrency import run_in_threadpool

from collector.alerts.notify import Notifier
from collector.alerts.store import AlertStore
from collector.api.auth import Tokens
from collector.digests.sender import Digests
from collector.ingest.pipeline import Ingest
from collector.metrics import Metrics
from collector.money.price_book import PriceBook
from collector.money.price_updates import PriceUpdates, list_status
from collector.receive.pool import DecodePool
from collector.reconcile.pull import Reconciler
from collector.store.file import Store


@dataclass(eq=False)
class AppState:
    """The collector's parts the HTTP routers use; `ready` is flipped by the server once everything has started."""

    store: Store
    ingest: Ingest
    metrics: Metrics
    price_book: PriceBook
    alerts: AlertStore
    notifier: Notifier
    digests: Digests
    max_body_bytes: int
    decode_pool: DecodePool  # the receivers decode through it (collector/receive/pool.py)
    tokens: Tokens = field(default_factory=Tokens)
    reconciler: Reconciler | None = None  # None: no OpenAI admin key configured
    price_updates: PriceUpdates | None = None  # None: the bundled price list, never updated
    production_environments: tuple[str, ...] = ()  # empty: the checklist's default (production, prod)
    listen_host: str | None = None
    ready: bool = False
    _readers: threading.local = field(default_factory=threading.local, repr=False)

    def price_status(self) -> dict[str, Any]:
        """The price list in use and how its updates go (/healthz, GET /api/v1/prices)."""
        if self.price_updates is not None:
            return self.price_updates.status()
        return list_status(self.price_book, datetime.now(UTC))

    async def read(self, query: Callable[[Any], Any]) -> Any:
        """Run `query` on this worker thread's reading cursor, off the event loop, and end what it left open."""

        def run() -> Any:
            cursor = getattr(self._readers, "cursor", None)
            if cursor is None:
                cursor = self._readers.cursor = self.store.reader()
            try:
                return query(cursor)
            finally:
                try:
                    self.store.finish_reading(cursor)
                except duckdb.Error:  # a broken cursor: the next request on this thread gets a new one
                    self._readers.cursor = None
                    cursor.close()

        return await run_in_threadpool(run)
