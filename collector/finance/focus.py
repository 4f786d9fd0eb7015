"""FOCUS 1.2 (the FinOps Open Cost and Usage Specification) cost rows, reconciled with OpenAI's bill.

One row per UTC day x service x team x feature x model x provider x billing unit x price version, with every
mandatory FOCUS column under the spec's name, type and allowed values, and our dimensions in `x_` columns (the
spec's rule for extensions). Costs are exact decimals:

- BilledCost = EffectiveCost = ContractedCost = what the calls cost at the book's rates (negotiated overrides
  included, `collector/money/overrides.py`): OpenAI invoices at the rates negotiated with it, and no commitment
  discount is amortised here.
- ListCost = the same calls at the list price alone: when the book has overrides, each call is priced again by a
  book without them (raw calls needed: on days retention emptied, ListCost is the cost as stored).
- Days whose raw calls retention deleted come from the daily rollup, which keeps no price version
  (x_PriceVersion empty).
- Reconciliation (`collector/reconcile/compare.py`): on every day pulled from OpenAI, its untracked spend becomes
  one Adjustment row per line item (no team), and any difference left (we counted more than OpenAI billed) one
  more, so the OpenAI rows of a reconciled month add up to OpenAI's bill to the nano-dollar.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import duckdb

from collector.money.price_book import PriceBook
from collector.query.filters import GROUPS, PROVIDER, UNPRICED, QueryError
from collector.reconcile import compare
from collector.store import rollups

ZERO = Decimal(0)
OPENAI = "openai"
# Names of who bills a provider's calls (gen_ai.provider.name → FOCUS ProviderName/PublisherName/InvoiceIssuerName).
PROVIDER_NAMES = {
    OPENAI: "OpenAI",
    "azure.ai.openai": "Microsoft",
    "anthropic": "Anthropic",
    "openrouter": "OpenRouter",
    "aws.bedrock": "AWS",
    "gcp.vertex_ai": "Google Cloud",
}
# What each billing unit is priced on: FOCUS PricingUnit and the SQL of the quantity.
UNITS = {
    "tokens": ("Tokens", "coalesce(sum(input_tokens), 0) + coalesce(sum(output_tokens), 0)"),
    "images": ("Images", "coalesce(sum(images), 0)"),
    "characters": ("Characters", "coalesce(sum(input_characters), 0)"),
    "audio_seconds": ("Seconds", f"coalesce(sum({rollups.AUDIO_SECONDS}), 0)"),
    "requests": ("Requests", "count(*)"),
}
# The daily rollup's spelling of the same quantities.
_ROLLUP_UNITS = {
    "tokens": "coalesce(sum(input_tokens), 0) + coalesce(sum(output_tokens), 0)",
    "images": "coalesce(sum(images), 0)",
    "characters": "coalesce(sum(input_characters), 0)",
    "audio_seconds": "coalesce(sum(audio_seconds), 0)",
    "requests": "sum(requests)",
}
COST_COLUMNS = ("BilledCost", "EffectiveCost", "ContractedCost", "ListCost")
QUANTITY_COLUMNS = ("ConsumedQuantity", "PricingQuantity")
TIME_COLUMNS = ("BillingPeriodStart", "BillingPeriodEnd", "ChargePeriodStart", "ChargePeriodEnd")
COUNT_COLUMNS = (
    "x_Requests", "x_InputTokens", "x_CachedInputTokens", "x_OutputTokens", "x_ReasoningTokens", "x_UnpricedRequests",
)  # fmt: skip
# Every column, in file order: FOCUS's (alphabetical, as the spec lists them), then ours.
COLUMNS = (
    "BilledCost", "BillingAccountId", "BillingAccountName", "BillingCurrency", "BillingPeriodEnd",
    "BillingPeriodStart", "ChargeCategory", "ChargeClass", "ChargeDescription", "ChargeFrequency", "ChargePeriodEnd",
    "ChargePeriodStart", "ConsumedQuantity", "ConsumedUnit", "ContractedCost", "EffectiveCost", "InvoiceId",
    "InvoiceIssuerName", "ListCost", "PricingQuantity", "PricingUnit", "ProviderName", "PublisherName",
    "ServiceCategory", "ServiceName",
    "ServiceSubcategory", "Tags",
    "x_Service", "x_Team", "x_Feature", "x_Model", "x_Provider", "x_BillingUnit", "x_PriceVersion", "x_LineItem",
    *COUNT_COLUMNS,
)  # fmt: skip

# A call's group: the grain above (the model as the query API names it, a missing provider as OpenAI's).
_KEYS = ("day", "service", "team", "feature", "model", "provider", "billing_unit", "price_version")
_KEY_SQL = {
    "day": "(DATE '1970-01-01' + (epoch_ms(start_time) // 86400000)::INTEGER)",
    "model": GROUPS["model"],
    "provider": PROVIDER,
    "billing_unit": "coalesce(billing_unit, 'tokens')",
}
_RAW_UNIT = " ".join(f"WHEN '{unit}' THEN {sql}" for unit, (_, sql) in UNITS.items())
_ROLLUP_UNIT = " ".join(f"WHEN '{unit}' THEN {sql}" for unit, sql in _ROLLUP_UNITS.items())
_TOKEN_SUMS = ", ".join(f"coalesce(sum({name}), 0)::BIGINT" for name in rollups.TOKENS)
_BY_KEYS = ", ".join(str(position) for position in range(1, len(_KEYS) + 1))  # the quantity's CASE needs them named
Key = tuple[Any, ...]


class FocusError(QueryError):
    """A window the export can't cover (the API answers 400 naming the parameter)."""


@dataclass(frozen=True)
class Window:
    """Whole UTC days [start, end): FOCUS charges are per day."""

    start: date
    end: date

    @classmethod
    def of(cls, start: datetime | None, end: datetime | None, today: date) -> Window:
        """`from`/`to` (UTC midnights), by default the current UTC month."""
        first = start or datetime.combine(today.replace(day=1), time(0), UTC)
        last = end or datetime.combine(_next_month(first.astimezone(UTC).date()), time(0), UTC)
        for name, moment in (("from", first), ("to", last)):
            utc = moment.astimezone(UTC)
            if utc.time() != time(0):
                raise FocusError(name, "must be a UTC midnight (FOCUS charges are per UTC day)")
        window = cls(first.astimezone(UTC).date(), last.astimezone(UTC).date())
        if window.start >= window.end:
            raise FocusError("from", "must be before to")
        if (window.end - window.start).days > 366:
            raise FocusError("to", "at most 366 days per export")
        return window


def rows(con: duckdb.DuckDBPyConnection, window: Window, book: PriceBook) -> list[dict[str, Any]]:
    """The FOCUS rows of `window`: calls grouped as above, then reconciliation's adjustments."""
    days = [window.start, window.end]
    groups = _raw_groups(con, days) + rollup_groups(con, days)
    list_costs = _list_costs(con, days, book) if book.overrides.entries else {}
    out = [_call_row(group, list_costs.get(group["key"])) for group in groups]
    out += reconciliation_rows(con, window)
    out.sort(key=lambda row: (row["ChargePeriodStart"], row["x_Provider"], *(str(row[name]) for name in COLUMNS)))
    return out


def _raw_groups(con: duckdb.DuckDBPyConnection, days: list[date]) -> list[dict[str, Any]]:
    keys = ", ".join(f"{_KEY_SQL.get(name, name)} AS {name}" for name in _KEYS)
    result = con.execute(
        f"SELECT {keys}, coalesce(sum(cost_usd), 0)::DECIMAL(38,9), "
        f"(CASE coalesce(billing_unit, 'tokens') {_RAW_UNIT} END)::DECIMAL(38,9), count(*), {_TOKEN_SUMS}, "
        f"count(*) FILTER (WHERE {UNPRICED}) FROM llm_calls "
        f"WHERE start_time >= ? AND start_time < ? GROUP BY {_BY_KEYS}",
        [_midnight(day) for day in days],
    ).fetchall()
    return [_group(row) for row in result]


def rollup_groups(con: duckdb.DuckDBPyConnection, days: list[date]) -> list[dict[str, Any]]:
    """Days of the window with no raw call left (retention): from the rollup, which has no price version."""
    keys = ", ".join(f"{_KEY_SQL.get(name, name)} AS {name}" for name in _KEYS if name not in ("day", "price_version"))
    result = con.execute(
        f"SELECT day, {keys}, NULL AS price_version, coalesce(sum(cost_usd), 0)::DECIMAL(38,9), "
        f"(CASE coalesce(billing_unit, 'tokens') {_ROLLUP_UNIT} END)::DECIMAL(38,9), sum(requests), {_TOKEN_SUMS}, "
        "sum(unpriced_requests) FROM llm_calls_daily WHERE day >= ? AND day < ? AND day NOT IN ("
        f"SELECT DISTINCT {_KEY_SQL['day']} FROM llm_calls WHERE start_time >= ? AND start_time < ?) "
        f"GROUP BY {_BY_KEYS}",
        [*days, *(_midnight(day) for day in days)],
    ).fetchall()
    return [_group(row) for row in result]


def _group(row: tuple[Any, ...]) -> dict[str, Any]:
    key = tuple(row[: len(_KEYS)])
    cost, quantity, requests, *tokens, unpriced = row[len(_KEYS) :]
    return {
        "key": key,
        "cost": cost,
        "quantity": quantity,
        "requests": requests,
        "tokens": tokens,
        "unpriced": unpriced,
    }


def _list_costs(con: duckdb.DuckDBPyConnection, days: list[date], book: PriceBook) -> dict[Key, Decimal]:
    """Each group's cost at list price: its calls priced again by a book without the overrides."""
    list_book = PriceBook(price_list=book.price_list)
    keys = ", ".join(f"{_KEY_SQL.get(name, name)} AS _{name}" for name in _KEYS)
    result = con.execute(
        f"SELECT {keys}, * FROM llm_calls WHERE start_time >= ? AND start_time < ?", [_midnight(day) for day in days]
    )
    names = [column[0] for column in result.description]
    totals: dict[Key, Decimal] = defaultdict(Decimal)
    while batch := result.fetchmany(10_000):
        for values in batch:
            call = dict(zip(names, values, strict=True))
            key = tuple(call[f"_{name}"] for name in _KEYS)
            if call["cost_source"] == "collector":  # book-priced: at list price now; any other cost is as stored
                list_book.price_row(call)
            totals[key] += call["cost_usd"] or ZERO
    return totals


def _call_row(group: dict[str, Any], list_cost: Decimal | None) -> dict[str, Any]:
    day, service, team, feature, model, provider, unit, version = group["key"]
    unit_name = UNITS.get(unit, UNITS["requests"])[0]
    cost = group["cost"]
    labels = {"service": service, "team": team, "feature": feature}
    what = f"{model or 'unknown model'} {unit_name.lower()}"
    return {
        **_common(day, provider),
        "BilledCost": cost,
        "EffectiveCost": cost,
        "ContractedCost": cost,
        "ListCost": cost if list_cost is None else list_cost,
        "ChargeCategory": "Usage",
        "ChargeDescription": f"{what}, {group['requests']} requests"
        + "".join(f", {name} {value}" for name, value in labels.items() if value),
        "ChargeFrequency": "Usage-Based",
        "ConsumedQuantity": group["quantity"],
        "ConsumedUnit": unit_name,
        "PricingQuantity": group["quantity"],
        "PricingUnit": unit_name,
        "Tags": json.dumps({name: value for name, value in labels.items() if value}, sort_keys=True),
        "x_Service": service,
        "x_Team": team,
        "x_Feature": feature,
        "x_Model": model,
        "x_BillingUnit": unit,
        "x_PriceVersion": version,
        "x_LineItem": None,
        **dict(zip(COUNT_COLUMNS, [group["requests"], *group["tokens"], group["unpriced"]], strict=True)),
    }


def reconciliation_rows(con: duckdb.DuckDBPyConnection, window: Window) -> list[dict[str, Any]]:
    """OpenAI's spend beyond our calls on each day pulled: untracked line items, then what difference remains."""
    report = compare.reconciliation(con, window.start, window.end)
    untracked: dict[date, list[dict[str, Any]]] = defaultdict(list)
    for item in report["untracked"]:
        untracked[date.fromisoformat(item["day"])].append(item)
    out = []
    for day_row in report["rows"]:
        if day_row["openai_cost_usd"] is None:  # never pulled: nothing to reconcile with
            continue
        day = date.fromisoformat(day_row["day"])
        left = Decimal(day_row["openai_cost_usd"]) - Decimal(day_row["our_cost_usd"])
        for item in untracked[day]:
            amount = Decimal(item["untracked_usd"])
            left -= amount
            description = f"Untracked spend: OpenAI billed {item['line_item']} beyond every instrumented call"
            out.append(_adjustment(day, amount, description, item["line_item"]))
        if left:
            verb = "exceed" if left < 0 else "fall short of"
            out.append(
                _adjustment(day, left, f"Difference from OpenAI's bill: our priced calls {verb} the day's", None)
            )
    return out


def _adjustment(day: date, amount: Decimal, description: str, line_item: str | None) -> dict[str, Any]:
    return {
        **_common(day, OPENAI),
        **dict.fromkeys(COST_COLUMNS, amount),
        "ChargeCategory": "Adjustment",
        "ChargeDescription": description,
        "ChargeFrequency": "Usage-Based",
        **dict.fromkeys(("ConsumedQuantity", "ConsumedUnit", "PricingQuantity", "PricingUnit")),
        "Tags": "{}",
        **dict.fromkeys(("x_Service", "x_Team", "x_Feature", "x_Model", "x_PriceVersion")),
        "x_BillingUnit": None,
        "x_LineItem": line_item,
        **dict.fromkeys(COUNT_COLUMNS, 0),
    }


def _common(day: date, provider: str) -> dict[str, Any]:
    """What every row of a provider's day says: the account, currency, periods and service."""
    name = PROVIDER_NAMES.get(provider, provider)
    month = day.replace(day=1)
    return {
        "BillingAccountId": provider,
        "BillingAccountName": f"{name} account",
        "BillingCurrency": "USD",
        "BillingPeriodStart": _midnight(month),
        "BillingPeriodEnd": _midnight(_next_month(month)),
        "ChargeClass": None,
        "ChargePeriodStart": _midnight(day),
        "ChargePeriodEnd": _midnight(day + timedelta(days=1)),
        "InvoiceId": None,  # we see charges, not OpenAI's invoices
        "InvoiceIssuerName": name,
        "ProviderName": name,
        "PublisherName": name,
        "ServiceCategory": "AI and Machine Learning",
        "ServiceSubcategory": "Generative AI",
        "ServiceName": f"{name} API",
        "x_Provider": provider,
    }


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(0), UTC)


def _next_month(day: date) -> date:
    return (day.replace(day=1) + timedelta(days=32)).replace(day=1)
