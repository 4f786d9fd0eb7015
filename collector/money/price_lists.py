"""Price lists: the one bundled with genai-prices, or one fetched at run time (collector/money/price_updates.py),
each named by its version, and the last good fetched list kept in the database (`price_lists`, migration 14) so
that a restart, and every collector of a lake, prices with the same list.

A fetched file is genai-prices' own data format (a JSON array of providers, its `data.json`), parsed by genai-prices
itself. A file is usable only if it parses and lists OpenAI's models: anything else changes nothing.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import pydantic
from genai_prices.data_snapshot import DataSnapshot
from genai_prices.types import _providers_from_raw  # what UpdatePrices.fetch itself parses with

from llmledger import pricing
from llmledger import semconv as sc

BUNDLED_SOURCE = "bundled"


class PriceListError(ValueError):
    """A fetched price file that can't be used; the message says why, never the URL's secrets."""


@dataclass(frozen=True, eq=False)
class PriceList:
    """One list of prices and the version that names it. `fetched_at` is when this data first arrived (None:
    bundled); `checked_at` when a fetch last found it still current."""

    snapshot: DataSnapshot
    version: str
    data_sha256: str | None = None  # None: the list bundled with the package
    source: str = BUNDLED_SOURCE  # the masked URL it came from
    fetched_at: datetime | None = None
    checked_at: datetime | None = None
    models: int = 0

    @property
    def bundled(self) -> bool:
        return self.data_sha256 is None


def bundled() -> PriceList:
    return PriceList(pricing.BUNDLED_SNAPSHOT, pricing.PRICE_VERSION, models=_model_count(pricing.BUNDLED_SNAPSHOT))


def parse(data: bytes, *, source: str, fetched_at: datetime, checked_at: datetime | None = None) -> PriceList:
    """A price file into a list, or PriceListError saying why it can't be used."""
    try:
        raw = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise PriceListError(f"the price file is not JSON ({exc})") from None
    if not isinstance(raw, list):
        raise PriceListError("the price file is not a JSON array of providers")
    try:
        providers = _providers_from_raw(raw)
    except (pydantic.ValidationError, ValueError, TypeError) as exc:
        first = exc.errors()[0] if isinstance(exc, pydantic.ValidationError) else {"msg": str(exc), "loc": ()}
        where = ".".join(str(part) for part in first.get("loc", ()))
        raise PriceListError(f"the price file is not genai-prices' format: {where}: {first['msg']}") from None
    openai = next((provider for provider in providers if provider.id == sc.PROVIDER_OPENAI), None)
    if openai is None or not openai.models:
        raise PriceListError("the price file lists no OpenAI models")
    snapshot = DataSnapshot(providers, from_auto_update=True)
    digest = hashlib.sha256(data).hexdigest()
    return PriceList(
        snapshot,
        pricing.list_version(digest),
        digest,
        source,
        fetched_at,
        checked_at or fetched_at,
        _model_count(snapshot),
    )


def mask_url(url: str) -> str:
    """The URL without what may be a secret (user, password, query, fragment): safe to show and log."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return f"{parts.scheme}://{host}{parts.path}"


def _model_count(snapshot: DataSnapshot) -> int:
    return sum(len(provider.models) for provider in snapshot.providers)


# The `price_lists` table: one row per list adopted, the data kept for the newest only (older lists are named by
# their rows and their rates are in price_rates; genai-prices bundles its data as a 1.6 MB module).
def newest(con: Any) -> tuple[bytes, str, datetime, datetime] | None:
    """(data, source, fetched_at, checked_at) of the list last stored, or None."""
    row = con.execute(
        "SELECT data, source, fetched_at, checked_at FROM price_lists WHERE data IS NOT NULL "
        "ORDER BY fetched_at DESC LIMIT 1"
    ).fetchone()
    if row is None:
        return None
    data, source, fetched_at, checked_at = row
    return data.encode(), source, fetched_at, checked_at


def newest_sha(con: Any) -> tuple[str, datetime] | None:
    """(data_sha256, checked_at) of the list last stored: a cheap look for a new one."""
    row = con.execute(
        "SELECT data_sha256, checked_at FROM price_lists WHERE data IS NOT NULL ORDER BY fetched_at DESC LIMIT 1"
    ).fetchone()
    return None if row is None else (row[0], row[1])


def store(con: Any, price_list: PriceList, data: bytes) -> None:
    """Keep `price_list` as the newest (in the caller's transaction); older lists keep their row, not their data."""
    con.execute("DELETE FROM price_lists WHERE data_sha256 = ?", [price_list.data_sha256])
    con.execute(
        "INSERT INTO price_lists (data_sha256, price_version, source, fetched_at, checked_at, models, data) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        [
            price_list.data_sha256,
            price_list.version,
            price_list.source,
            price_list.fetched_at,
            price_list.checked_at,
            price_list.models,
            data.decode(),
        ],
    )
    con.execute("UPDATE price_lists SET data = NULL WHERE data_sha256 <> ?", [price_list.data_sha256])


def mark_checked(con: Any, data_sha256: str, when: datetime) -> None:
    con.execute("UPDATE price_lists SET checked_at = ? WHERE data_sha256 = ?", [when, data_sha256])
