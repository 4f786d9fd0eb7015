"""The collector's price book: every stored cost comes from here (docs/architecture.md, Money).

In order, for each row:
  1. A cost the provider itself reported (normalize set `cost_source` "provider": OpenRouter's usage.cost, a
     gateway's header) is the bill: `cost_usd` is that amount, `price_version` NULL.
  2. A self-hosted server (provider `self_hosted`) has no price: `cost_usd` NULL, `cost_source` "self_hosted",
     never counted as unpriced.
  3. Moderations are free: a known zero, priced by the collector.
  4. Otherwise the row is priced from its usage (tokens, images, characters, audio seconds, built-in tools) with
     `genai-prices` list rates for its provider (a NULL provider is OpenAI), overlaid by the optional overrides
     file (negotiated rates, collector/money/overrides.py), looked up once per provider x model x tier x batch x
     UTC day. The list is the one bundled with genai-prices, or the last good one fetched at run time
     (collector/money/price_updates.py); a new list prices the rows that arrive after it, never stored ones (that is
     re-pricing's job). The row keeps `price_version` (genai-prices' version, the fetched data's hash, our
     supplement's version + the overrides file's hash), `price_tier_fallback` and `price_provider_fallback` (an
     Azure model priced at OpenAI's list); every rate set used is offered to `price_rates` once. A cost that came on
     the span is used only when the book can't price the call; an unknown model stays unpriced (NULL), never 0, and
     so does a call billed only in units its rates don't price (units left out of a call that also has tokens are
     counted by `price_rows`).
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field, fields
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from collector.money import price_lists
from collector.money.overrides import RATE_FIELDS, PriceOverrides
from collector.money.price_lists import PriceList
from llmledger import pricing
from llmledger import semconv as sc

COST_QUANTUM = Decimal("0.000000001")  # DECIMAL(18,9)
_MONEY_LIMIT = Decimal(10) ** 9
_PER_MILLION = Decimal(1_000_000)
_CACHE_SIZE = 4096  # model names come from spans: a stream of made-up names must not grow memory forever
SOURCE_COLLECTOR = "collector"
SOURCE_SPAN = "span"
SOURCE_PROVIDER = sc.COST_SOURCE_PROVIDER  # the provider's own bill, from the span
SOURCE_SELF_HOSTED = sc.PROVIDER_SELF_HOSTED  # no price: a server of one's own
FREE_OPERATIONS = frozenset({"moderations"})  # api_type or operation: OpenAI doesn't bill them
PRICED_FIELDS = ("cost_usd", "cost_source", "price_version", "price_tier_fallback", "price_provider_fallback")
# Columns a call is billed on (any of them present: the book tries to price it).
_USAGE_COLUMNS = tuple(field.name for field in fields(pricing.Usage) if field.type in (int, float, "int", "float"))
_TOKEN_COLUMNS = tuple(name for name in _USAGE_COLUMNS if name.endswith("_tokens"))

RateKey = tuple[str, str, str, bool, date]  # provider, model, tier as priced, batch, UTC day


def _quantize(value: Decimal) -> Decimal:
    return value.quantize(COST_QUANTUM, rounding=ROUND_HALF_EVEN)


def _storable(value: Decimal) -> bool:
    return value.is_finite() and abs(value) < _MONEY_LIMIT


def tier_priced(service_tier: str | None) -> str:
    """The tier a call is priced at: what the response reported, `fast` being `priority`, else default."""
    if service_tier == "fast":
        return "priority"
    return service_tier or "default"


@dataclass(eq=False)
class _Edition:
    """The book with one price list: its version (the list's and the overrides') and the rates looked up in it.
    Swapped whole when a new list arrives, so a row is priced and versioned by one list."""

    price_list: PriceList
    version: str
    cache: OrderedDict[RateKey, tuple[pricing.Rates | None, str]] = field(default_factory=OrderedDict)


class PriceBook:
    """Prices rows in place: cost_usd, cost_source, price_version, price_tier_fallback, price_provider_fallback."""

    def __init__(self, overrides: PriceOverrides | None = None, price_list: PriceList | None = None) -> None:
        self.overrides = overrides or PriceOverrides()
        self._lock = threading.Lock()
        self._new_rates: list[dict[str, Any]] = []
        self._edition = self._edition_of(price_list or price_lists.bundled())

    @property
    def version(self) -> str:
        return self._edition.version

    @property
    def price_list(self) -> PriceList:
        return self._edition.price_list

    def use(self, price_list: PriceList) -> bool:
        """Price new rows with `price_list` from now on; False when it is the list in use already (same data)."""
        if price_list.data_sha256 == self._edition.price_list.data_sha256:
            return False
        self._edition = self._edition_of(price_list)
        return True

    def knows(self, model: str, provider: str | None, when: datetime) -> bool:
        """Whether the book has a price for `model` at `provider` on `when`'s day (its default tier), without
        recording anything."""
        provider = provider or sc.PROVIDER_OPENAI
        if provider == SOURCE_SELF_HOSTED:
            return False
        day = when.astimezone(UTC).date()
        listed = pricing.rates_on(day, model, None, False, provider, self._edition.price_list.snapshot)
        override = self.overrides.find(model, "default", False, day, provider)
        return (override.applied_to(listed) if override is not None else listed) is not None

    def _edition_of(self, price_list: PriceList) -> _Edition:
        return _Edition(price_list, self.overrides.version(price_list.version))

    def price_rows(self, rows: Iterable[dict[str, Any]]) -> dict[str, int]:
        """Price every row; return how many calls used each unit their rates don't price (left out of their cost)."""
        left_out: dict[str, int] = {}
        for row in rows:
            for unit in self.price_row(row):
                left_out[unit] = left_out.get(unit, 0) + 1
        return left_out

    def price_row(self, row: dict[str, Any]) -> list[str]:
        """Price `row` in place (module docstring); return the units its cost leaves out, unpriced."""
        span_cost = row.get("span_cost_usd")
        if span_cost is not None:
            # A float from the span (ours, OpenLIT's) can carry more digits than DECIMAL(18,9) holds.
            row["span_cost_usd"] = span_cost = _quantize(span_cost) if _storable(span_cost) else None
        provider = row.get("provider") or sc.PROVIDER_OPENAI
        if row.get("cost_source") == SOURCE_PROVIDER and span_cost is not None and span_cost >= 0:
            _set(row, span_cost, SOURCE_PROVIDER)
            return []
        if provider == SOURCE_SELF_HOSTED:
            _set(row, None, SOURCE_SELF_HOSTED)
            return []
        edition = self._edition  # one list for the whole row, even if a new one arrives meanwhile
        if row.get("api_type") in FREE_OPERATIONS or row.get("operation") in FREE_OPERATIONS:
            _set(row, _quantize(Decimal(0)), SOURCE_COLLECTOR, edition.version, False, False)
            return []
        priced = self._book_cost(edition, row, provider)
        if priced is not None:
            cost, rates, left_out = priced
            # A cost beyond DECIMAL(18,9) stays as it is, for collector.ingest.validate to reject the row.
            cost = _quantize(cost) if _storable(cost) else cost
            _set(row, cost, SOURCE_COLLECTOR, edition.version, rates.tier_fallback, rates.provider_fallback)
            return left_out
        if span_cost is not None:
            _set(row, span_cost, SOURCE_SPAN)
        else:
            _set(row, None, None)
        return []

    def rates(
        self, model: str, service_tier: str | None, batch: bool, when: datetime, provider: str | None = None
    ) -> pricing.Rates | None:
        """The rates a call of `model` at `provider` (None: OpenAI) at `when` pays: list price, then any override."""
        return self._rates(self._edition, model, service_tier, batch, when, provider)

    def _rates(
        self,
        edition: _Edition,
        model: str,
        service_tier: str | None,
        batch: bool,
        when: datetime,
        provider: str | None = None,
    ) -> pricing.Rates | None:
        provider = provider or sc.PROVIDER_OPENAI
        key = (provider, model, tier_priced(service_tier), batch, when.astimezone(UTC).date())
        cache = edition.cache
        with self._lock:
            cached = cache.get(key)
            if cached is not None:
                cache.move_to_end(key)
                return cached[0]
        # The tier as priced: `fast` and `priority` share. A server of one's own has no list price, whatever
        # genai-prices may find for the model's name.
        snapshot = edition.price_list.snapshot
        listed = None
        if provider != SOURCE_SELF_HOSTED:
            listed = pricing.rates_on(key[4], model, key[2], batch, provider, snapshot)
        override = self.overrides.find(model, key[2], batch, key[4], provider)
        rates = override.applied_to(listed) if override is not None else listed
        source = "override" if override is not None else "list"
        with self._lock:
            if key not in cache and rates is not None:
                self._new_rates.append(_rate_row(edition.version, key, rates, source))
            cache[key] = (rates, source)
            if len(cache) > _CACHE_SIZE:
                cache.popitem(last=False)
        return rates

    def take_new_rates(self) -> list[dict[str, Any]]:
        """Rate sets first used since the last call, for the `price_rates` table (stored once per key)."""
        with self._lock:
            taken, self._new_rates = self._new_rates, []
        return taken

    def _book_cost(
        self, edition: _Edition, row: dict[str, Any], provider: str
    ) -> tuple[Decimal, pricing.Rates, list[str]] | None:
        """The row's cost from its usage at its provider's rates, the rates, and the units they leave out; None
        when the book can't price the call."""
        if all(row.get(name) is None for name in _USAGE_COLUMNS):
            return None
        if any((row.get(name) or 0) < 0 for name in _USAGE_COLUMNS):
            return None  # rejected before storage (collector.ingest.validate)
        tier = row.get("service_tier")
        if tier in pricing.UNPRICED_TIERS:
            return None
        rates = None
        for model in (row.get("response_model"), row.get("request_model")):
            if model:
                rates = self._rates(edition, model, tier, bool(row.get("batch")), row["start_time"], provider)
                if rates is not None:
                    break
        if rates is None:
            return None
        usage = pricing.Usage.from_row(row)
        left_out = rates.unpriced_units(usage)
        if left_out and all(row.get(name) is None for name in _TOKEN_COLUMNS):
            return None  # billed only in units these rates don't price: unpriced, not 0
        return rates.cost(usage), rates, left_out


def _set(
    row: dict[str, Any],
    cost: Decimal | None,
    source: str | None,
    version: str | None = None,
    tier_fallback: bool | None = None,
    provider_fallback: bool | None = None,
) -> None:
    row["cost_usd"] = cost
    row["cost_source"] = source
    row["price_version"] = version
    row["price_tier_fallback"] = tier_fallback
    row["price_provider_fallback"] = provider_fallback


def _rate_row(version: str, key: RateKey, rates: pricing.Rates, source: str) -> dict[str, Any]:
    provider, model, tier, batch, day = key
    applied: dict[str, Any] = {}
    for name in RATE_FIELDS:
        rate = getattr(rates, name)
        if rate is not None:
            applied[name] = {
                "usd_per_mtok": format(rate.base * _PER_MILLION, "f"),
                "above_input_tokens": [[start, format(value * _PER_MILLION, "f")] for start, value in rate.tiers],
            }
    if rates.per_unit:  # USD per unit (character, audio second, tool call, container)
        applied["per_unit"] = {name: format(price, "f") for name, price in rates.per_unit}
    if rates.per_image:
        applied["per_image"] = [[quality, size, format(price, "f")] for quality, size, price in rates.per_image]
    if rates.provider_fallback:
        applied["provider_fallback"] = True
    return {
        "price_version": version,
        "provider": provider,
        "model": model,
        "service_tier": tier,
        "batch": batch,
        "day": day,
        "source": source,
        "tier_fallback": rates.tier_fallback,
        "rates": json.dumps(applied, sort_keys=True),
    }
