"""The collector's price book: every stored cost comes from here (DESIGN.md, Storage).

Each row is priced from its tokens with `genai-prices` rates (cached per model x tier x day, so a
row costs microseconds). A cost that came on the span is used only when the book can't price the
model; an unknown model stays unpriced (NULL), never 0.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from llmledger import pricing

COST_QUANTUM = Decimal("0.000000001")  # DECIMAL(18,9)
_MONEY_LIMIT = Decimal(10) ** 9
SOURCE_COLLECTOR = "collector"
SOURCE_SPAN = "span"


def _quantize(value: Decimal) -> Decimal:
    return value.quantize(COST_QUANTUM, rounding=ROUND_HALF_EVEN)


def _storable(value: Decimal) -> bool:
    return value.is_finite() and abs(value) < _MONEY_LIMIT


class PriceBook:
    """Prices rows in place: cost_usd, cost_source, price_version, price_tier_fallback."""

    version = pricing.PRICE_VERSION

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

    def _book_cost(self, row: dict[str, Any]) -> tuple[Decimal | None, bool]:
        input_tokens = row.get("input_tokens")
        output_tokens = row.get("output_tokens")
        if input_tokens is None and output_tokens is None:
            return None, False
        if min(input_tokens or 0, output_tokens or 0) < 0:
            return None, False  # rejected before storage (collector.validate)
        tier = row.get("service_tier")
        if tier in pricing.UNPRICED_TIERS:
            return None, False
        rates = None
        for model in (row.get("response_model"), row.get("request_model")):
            if model:
                rates = pricing.rates_for(model, tier, bool(row.get("batch")), row["start_time"])
                if rates is not None:
                    break
        if rates is None:
            return None, False
        cost = rates.cost(
            input_tokens or 0,
            row.get("cached_input_tokens") or 0,
            row.get("cache_write_tokens") or 0,
            output_tokens or 0,
        )
        return cost, rates.tier_fallback
