"""The collector's price book: every stored cost comes from here (docs/architecture.md, Money).

Each row is priced from its tokens with `genai-prices` list rates, overlaid by the optional overrides file
(negotiated rates, collector/money/overrides.py), looked up once per model x tier x batch x UTC day. The
row keeps `price_version` (genai-prices' version + the overrides file's hash) and every rate set used is
offered to `price_rates` once. A cost that came on the span is used only when the book can't price the model;
an unknown model stays unpriced (NULL), never 0.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Iterable
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from collector.money.overrides import RATE_FIELDS, PriceOverrides
from llmledger import pricing

COST_QUANTUM = Decimal("0.000000001")  # DECIMAL(18,9)
_MONEY_LIMIT = Decimal(10) ** 9
_PER_MILLION = Decimal(1_000_000)
_CACHE_SIZE = 4096  # model names come from spans: a stream of made-up names must not grow memory forever
SOURCE_COLLECTOR = "collector"
SOURCE_SPAN = "span"

RateKey = tuple[str, str, bool, date]  # model, tier as priced, batch, UTC day


def _quantize(value: Decimal) -> Decimal:
    return value.quantize(COST_QUANTUM, rounding=ROUND_HALF_EVEN)


def _storable(value: Decimal) -> bool:
    return value.is_finite() and abs(value) < _MONEY_LIMIT


def tier_priced(service_tier: str | None) -> str:
    """The tier a call is priced at: what the response reported, `fast` being `priority`, else default."""
    if service_tier == "fast":
        return "priority"
    return service_tier or "default"


class PriceBook:
    """Prices rows in place: cost_usd, cost_source, price_version, price_tier_fallback."""

    def __init__(self, overrides: PriceOverrides | None = None) -> None:
        self.overrides = overrides or PriceOverrides()
        self.version = self.overrides.version(pricing.PRICE_VERSION)
        self._cache: OrderedDict[RateKey, tuple[pricing.Rates | None, str]] = OrderedDict()
        self._lock = threading.Lock()
        self._new_rates: list[dict[str, Any]] = []

    def price_rows(self, rows: Iterable[dict[str, Any]]) -> None:
        for row in rows:
            self.price_row(row)

    def price_row(self, row: dict[str, Any]) -> None:
        span_cost = row.get("span_cost_usd")
        if span_cost is not None:
            # A float from the span (ours, OpenLIT's) can carry more digits than DECIMAL(18,9) holds.
            row["span_cost_usd"] = span_cost = _quantize(span_cost) if _storable(span_cost) else None
        cost, fallback = self._book_cost(row)
        if cost is not None:
            row["cost_usd"] = _quantize(cost)
            row["cost_source"] = SOURCE_COLLECTOR
            row["price_version"] = self.version
            row["price_tier_fallback"] = fallback
            return
        if span_cost is not None:
            row["cost_usd"] = span_cost
            row["cost_source"] = SOURCE_SPAN
        else:
            row["cost_usd"] = None
            row["cost_source"] = None
        row["price_version"] = None
        row["price_tier_fallback"] = None

    def rates(self, model: str, service_tier: str | None, batch: bool, when: datetime) -> pricing.Rates | None:
        """The rates a call of `model` at `when` pays: list price, then any override."""
        key = (model, tier_priced(service_tier), batch, when.astimezone(UTC).date())
        with self._lock:
            cached = self._cache.get(key)
            if cached is not None:
                self._cache.move_to_end(key)
                return cached[0]
        listed = pricing.rates_for(model, key[1], batch, when)  # the tier as priced: `fast` and `priority` share
        override = self.overrides.find(model, key[1], batch, key[3])
        rates = override.applied_to(listed) if override is not None else listed
        source = "override" if override is not None else "list"
        with self._lock:
            if key not in self._cache and rates is not None:
                self._new_rates.append(_rate_row(self.version, key, rates, source))
            self._cache[key] = (rates, source)
            if len(self._cache) > _CACHE_SIZE:
                self._cache.popitem(last=False)
        return rates

    def take_new_rates(self) -> list[dict[str, Any]]:
        """Rate sets first used since the last call, for the `price_rates` table (stored once per key)."""
        with self._lock:
            taken, self._new_rates = self._new_rates, []
        return taken

    def _book_cost(self, row: dict[str, Any]) -> tuple[Decimal | None, bool]:
        input_tokens = row.get("input_tokens")
        output_tokens = row.get("output_tokens")
        if input_tokens is None and output_tokens is None:
            return None, False
        if min(input_tokens or 0, output_tokens or 0) < 0:
            return None, False  # rejected before storage (collector.ingest.validate)
        tier = row.get("service_tier")
        if tier in pricing.UNPRICED_TIERS:
            return None, False
        rates = None
        for model in (row.get("response_model"), row.get("request_model")):
            if model:
                rates = self.rates(model, tier, bool(row.get("batch")), row["start_time"])
                if rates is not None:
                    break
        if rates is None:
            return None, False
        cost = rates.cost(pricing.Usage.from_row(row))
        return cost, rates.tier_fallback


def _rate_row(version: str, key: RateKey, rates: pricing.Rates, source: str) -> dict[str, Any]:
    model, tier, batch, day = key
    applied = {}
    for name in RATE_FIELDS:
        rate = getattr(rates, name)
        if rate is not None:
            applied[name] = {
                "usd_per_mtok": format(rate.base * _PER_MILLION, "f"),
                "above_input_tokens": [[start, format(value * _PER_MILLION, "f")] for start, value in rate.tiers],
            }
    return {
        "price_version": version,
        "model": model,
        "service_tier": tier,
        "batch": batch,
        "day": day,
        "source": source,
        "tier_fallback": rates.tier_fallback,
        "rates": json.dumps(applied, sort_keys=True),
    }
