"""Live price lists (`llmledger collector --prices-update [URL]`): genai-prices' own background updater
(`UpdatePrices`: its thread, interval, URL and timeouts) runs the schedule; its `fetch()` is ours, so that a list is
checked, kept in the database and handed to the price book before any call is priced with it.

A fetch that fails, times out or brings something unusable changes nothing: the book keeps its list, the failure is
counted (`llmledger_price_updates_total{outcome}`) and shown (`status()`, in /healthz). On a lake only the leader
downloads; the other collectors take the list it stored, so all price with one version.

Our `fetch()` returns None, which genai-prices takes as "use the bundled data": its process-wide snapshot is never
replaced by the collector, and nothing else in the process (the alert rules' model check) changes under it. The
price book holds its list explicitly.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import duckdb
import httpx2
from genai_prices import UpdatePrices

from collector.metrics import Metrics
from collector.money import price_lists
from collector.money.price_book import PriceBook
from collector.money.price_lists import PriceListError
from collector.store.file import Store

log = logging.getLogger("llmledger.collector")
MAX_BYTES = 64 * 1024 * 1024  # far above genai-prices' list (its bundled data module is 1.6 MB)
METRIC = "llmledger_price_updates_total"


class PriceUpdateError(Exception):
    """A fetch that changed nothing; `reason` is its metric label, the message names no secret."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass
class _Fetcher(UpdatePrices):
    """genai-prices' updater with our fetch."""

    owner: PriceUpdates | None = field(default=None, compare=False, repr=False)

    def fetch(self) -> None:  # type: ignore[override]
        if self.owner is not None:
            self.owner.fetch_once()
        return None  # genai-prices' own snapshot stays the bundled one (module docstring)


class PriceUpdates:
    """Keeps `book`'s price list current from `url` every `interval_s` seconds, and says how it went."""

    def __init__(
        self,
        store: Store,
        book: PriceBook,
        metrics: Metrics,
        url: str,
        *,
        interval_s: float,
        timeout_s: float,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.store, self.book, self.metrics = store, book, metrics
        self.source = price_lists.mask_url(url)
        self.interval_s, self.timeout_s = interval_s, timeout_s
        self.clock = clock
        self._updater = _Fetcher(
            update_interval=interval_s,
            url=url,
            request_timeout=httpx2.Timeout(timeout_s, connect=min(timeout_s, 5.0)),
            owner=self,
        )
        self._lock = threading.Lock()  # one fetch at a time, and a consistent status
        self._stopped = False
        self.last_attempt_at: datetime | None = None
        self.last_error: str | None = None
        self.last_error_at: datetime | None = None
        self.failures = 0  # since the last success
        self.checked_at: datetime | None = None  # when a fetch last found the list in use current

    @property
    def is_leader(self) -> bool:
        check = self.store.leader_check
        return check is None or check()

    def restore(self) -> None:
        """At start: take the last good list kept in the database, if any (a restart, or another collector's)."""
        with self._lock:
            self._adopt_stored()

    def start(self) -> None:
        self._updater.start()

    def stop(self) -> None:
        with self._lock:
            self._stopped = True
        self._updater.stop()

    def fetch_once(self) -> None:
        """One pass: the leader downloads, checks, stores and adopts; another collector adopts what it stored."""
        with self._lock:
            if self._stopped:
                return
            if not self.is_leader:
                self._adopt_stored()
                return
            now = self.clock()
            self.last_attempt_at = now
            try:
                self._download_and_adopt(now)
            except PriceUpdateError as exc:
                self.failures += 1
                self.last_error, self.last_error_at = str(exc), now
                self.metrics.add(METRIC, outcome=exc.reason)
                log.warning("price list update from %s failed: %s; still pricing with %s", self.source, exc,
                            self.book.price_list.version)  # fmt: skip
                raise
            self.failures, self.last_error, self.checked_at = 0, None, now

    def status(self) -> dict[str, Any]:
        """Which list prices new calls, how old it is, and how updates go (for /healthz and the Spend page)."""
        now = self.clock()
        with self._lock:
            return {
                **list_status(self.book, now, self.checked_at),
                "updates": {
                    "enabled": True,
                    "source": self.source,
                    "interval_s": self.interval_s,
                    "leader": self.is_leader,
                    "last_attempt_at": _iso(self.last_attempt_at),
                    "last_error": self.last_error,
                    "last_error_at": _iso(self.last_error_at),
                    "failures_since_success": self.failures,
                },
            }

    def _download_and_adopt(self, now: datetime) -> None:
        data = self._download()
        try:
            fetched = price_lists.parse(data, source=self.source, fetched_at=now)
        except PriceListError as exc:
            raise PriceUpdateError("unusable", str(exc)) from None
        try:
            with self.store.transaction() as con:
                if fetched.data_sha256 == self.book.price_list.data_sha256:
                    price_lists.mark_checked(con, fetched.data_sha256, now)
                else:
                    price_lists.store(con, fetched, data)
        except duckdb.Error as exc:  # the database said no: keep the list in use, all collectors alike
            raise PriceUpdateError("store_failed", f"could not keep the new list: {type(exc).__name__}") from None
        if self.book.use(fetched):
            self.metrics.add(METRIC, outcome="new")
            log.info("price list %s (%d models) from %s prices new calls", fetched.version, fetched.models, self.source)
        else:
            self.metrics.add(METRIC, outcome="unchanged")

    def _download(self) -> bytes:
        updater = self._updater
        try:
            with httpx2.stream("GET", updater.url, timeout=updater.request_timeout) as response:
                if response.status_code != 200:
                    raise PriceUpdateError("http_error", f"the server answered HTTP {response.status_code}")
                data = bytearray()
                for chunk in response.iter_bytes():
                    data += chunk
                    if len(data) > MAX_BYTES:
                        raise PriceUpdateError("unusable", f"the price file is larger than {MAX_BYTES} bytes")
                return bytes(data)
        except httpx2.TimeoutException:
            raise PriceUpdateError("timeout", f"no answer within {self.timeout_s:g} s") from None
        except httpx2.HTTPError as exc:  # the message of a transport error can carry the URL: name the kind only
            raise PriceUpdateError("unreachable", f"could not reach the server ({type(exc).__name__})") from None

    def _adopt_stored(self) -> None:
        """Take the newest list in the database when it isn't the one in use. Caller holds `_lock`."""
        con = self.store.reader()
        try:
            newest = price_lists.newest_sha(con)
            if newest is None:
                return
            sha, checked_at = newest
            self.checked_at = checked_at
            if sha == self.book.price_list.data_sha256:
                return
            stored = price_lists.newest(con)
        finally:
            con.close()
        if stored is None:
            return
        data, source, fetched_at, checked_at = stored
        try:
            kept = price_lists.parse(data, source=source, fetched_at=fetched_at, checked_at=checked_at)
        except PriceListError as exc:  # kept by a newer genai-prices this one can't read: keep ours
            log.warning("the price list kept in the database can't be used (%s); keeping %s", exc,
                        self.book.price_list.version)  # fmt: skip
            return
        if self.book.use(kept):
            self.metrics.add(METRIC, outcome="adopted")
            log.info("pricing new calls with the stored price list %s from %s", kept.version, source)


def list_status(book: PriceBook, now: datetime, checked_at: datetime | None = None) -> dict[str, Any]:
    """The price list in use: version, where it came from, when it arrived and was last found current."""
    price_list = book.price_list
    checked_at = checked_at or price_list.checked_at
    return {
        "price_version": book.version,
        "list_version": price_list.version,
        "bundled": price_list.bundled,
        "source": price_list.source,
        "models": price_list.models,
        "fetched_at": _iso(price_list.fetched_at),
        "age_s": None if price_list.fetched_at is None else round((now - price_list.fetched_at).total_seconds()),
        "checked_at": _iso(checked_at),
        "updates": {"enabled": False},
    }


def _iso(when: datetime | None) -> str | None:
    return None if when is None else when.astimezone(UTC).isoformat()
