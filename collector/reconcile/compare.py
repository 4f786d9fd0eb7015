"""Ours against OpenAI's, per UTC day or per day and model: cost, tokens and requests side by side, and the spend
OpenAI billed that no instrumented call accounts for (untracked spend), by OpenAI's line items.

Our side is the daily rollup (it outlives raw-call retention), OpenAI's calls only (provider `openai`, or none
recorded: Azure, OpenRouter or Anthropic bill separately); OpenAI's side is what `collector.reconcile.pull` pulled.
Models are compared without OpenAI's dated snapshot suffix (`gpt-4o-mini-2024-07-18` → `gpt-4o-mini`), on both
sides. Each cost line item is set against our calls as `collector.reconcile.line_items` reads it: a model's line
item (tokens, images, audio) against our calls of that model; a built-in tool's (web search, file search, code
interpreter) against the calls that used the tool that day, so it joins their model (the one the line item names,
else shared among the models of those calls by their tool-call counts, which the rollup keeps too); a charge no call
makes (storage, fine-tuning training) against nothing: "billed outside calls".

Untracked spend of a day is OpenAI's cost minus ours when positive. It is attributed to line items in two steps:
a line item that none of our calls matched that day (billed outside calls, or a model or tool only an
uninstrumented app used) is untracked in full; for a model we did see, OpenAI's cost of that model beyond ours is
shared among its line items in proportion to their amounts. When we counted more than OpenAI on some model, that
surplus offsets the rest, so the shares are scaled down to sum exactly to the day's untracked spend.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_FLOOR, Decimal
from typing import Any

import duckdb

from collector.query.filters import PROVIDER, QueryError
from collector.reconcile import line_items
from collector.reconcile.line_items import OUTSIDE_CALLS, SNAPSHOT_RE, TOOL, TOOL_COLUMNS

BY = ("day", "model")
OPENAI_CALLS = f"{PROVIDER} = 'openai'"  # the calls OpenAI bills
NANO = Decimal("0.000000001")
PCT = Decimal("0.01")
ZERO = Decimal(0)


def _model_sql(column: str) -> str:
    return f"nullif(lower(regexp_replace(trim({column}), '{SNAPSHOT_RE}', '')), '')"


@dataclass
class Side:
    """Cost, tokens and requests of one side for one day (and model)."""

    cost: Decimal = ZERO
    input_tokens: int = 0
    output_tokens: int = 0
    requests: int = 0
    unpriced: int = 0

    def add(self, cost: Any, input_tokens: Any, output_tokens: Any, requests: Any, unpriced: Any = 0) -> None:
        self.cost += Decimal(cost or 0)
        self.input_tokens += int(input_tokens or 0)
        self.output_tokens += int(output_tokens or 0)
        self.requests += int(requests or 0)
        self.unpriced += int(unpriced or 0)


@dataclass
class LineItem:
    day: date
    line_item: str | None
    model: str | None  # what it is compared with: a model of ours, or what it names (a model, tool or charge)
    amount: Decimal
    kind: str = line_items.MODEL


def _ours(con: duckdb.DuckDBPyConnection, days: list[Any]) -> dict[tuple[date, str | None], Side]:
    """Our calls per day and model: cost (priced calls), tokens, successful requests and unpriced calls."""
    sides: dict[tuple[date, str | None], Side] = defaultdict(Side)
    rows = con.execute(
        f"SELECT day, {_model_sql('coalesce(response_model, request_model)')} AS model, sum(cost_usd), "
        "sum(input_tokens), sum(output_tokens), coalesce(sum(requests) FILTER (WHERE status = 'ok'), 0), "
        f"sum(unpriced_requests) FROM llm_calls_daily WHERE day >= ? AND day < ? AND {OPENAI_CALLS} GROUP BY ALL",
        days,
    ).fetchall()
    for day, model, *values in rows:
        sides[day, model].add(*values)
    return sides


ToolCalls = dict[tuple[date, str], dict[str | None, int]]  # (day, tool column) → model → calls


def _tool_calls(con: duckdb.DuckDBPyConnection, days: list[Any]) -> ToolCalls:
    """Built-in tool calls of our OpenAI calls per day, tool and model, from the daily rollup (which sums them), so
    a tool line item still finds the models of its calls after retention deleted them."""
    counts = ", ".join(f"coalesce(sum({column}), 0)" for column in TOOL_COLUMNS.values())
    used = " OR ".join(f"{column} > 0" for column in TOOL_COLUMNS.values())
    rows = con.execute(
        f"SELECT day, {_model_sql('coalesce(response_model, request_model)')} AS model, {counts} "
        f"FROM llm_calls_daily WHERE day >= ? AND day < ? AND {OPENAI_CALLS} AND ({used}) GROUP BY ALL",
        days,
    ).fetchall()
    calls: ToolCalls = defaultdict(dict)
    for day, model, *per_tool in rows:
        for column, count in zip(TOOL_COLUMNS.values(), per_tool, strict=True):
            if count:
                calls[day, column][model] = int(count)
    return calls


def _line_items(day: date, line_item: str | None, amount: Decimal, tool_calls: ToolCalls) -> list[LineItem]:
    """One line item as compared: a tool's joins the model it names, else the models of the calls that used the
    tool that day (split by their calls); anything else stands for what it names."""
    billed = line_items.classify(line_item)
    by_model = tool_calls.get((day, billed.tool or ""), {}) if billed.kind == TOOL and billed.model is None else {}
    if not by_model:
        return [LineItem(day, line_item, billed.model or line_items.model_name(line_item), amount, billed.kind)]
    models = sorted(by_model, key=lambda name: (-by_model[name], name or ""))
    if amount <= 0:  # a credit or nothing: not worth splitting
        return [LineItem(day, line_item, models[0], amount, TOOL)]
    parts = shares([Decimal(by_model[model]) for model in models], amount)
    return [LineItem(day, line_item, model, share, TOOL) for model, share in zip(models, parts, strict=True)]


def _openai(
    con: duckdb.DuckDBPyConnection, days: list[Any], tool_calls: ToolCalls
) -> tuple[dict[tuple[date, str | None], Side], list[LineItem], dict[date, datetime]]:
    """OpenAI's usage and cost per day and model, its line items per day, and the days pulled (when)."""
    sides: dict[tuple[date, str | None], Side] = defaultdict(Side)
    usage = con.execute(
        f"SELECT day, {_model_sql('model')} AS model, sum(input_tokens), sum(output_tokens), sum(requests) "
        "FROM openai_usage WHERE day >= ? AND day < ? GROUP BY ALL",
        days,
    ).fetchall()
    for day, model, input_tokens, output_tokens, requests in usage:
        sides[day, model].add(0, input_tokens, output_tokens, requests)
    costs = con.execute(
        "SELECT day, line_item, sum(amount) FROM openai_costs WHERE day >= ? AND day < ? AND currency = 'usd' "
        "GROUP BY ALL ORDER BY day, line_item",
        days,
    ).fetchall()
    items = [item for day, name, total in costs for item in _line_items(day, name, Decimal(total), tool_calls)]
    for item in items:
        sides[item.day, item.model].cost += item.amount
    pulled = con.execute("SELECT day, pulled_at FROM openai_pulled_days WHERE day >= ? AND day < ?", days).fetchall()
    return sides, items, dict(pulled)


def _text(value: Decimal | None) -> str | None:
    """Money as the API sends it: a string of plain digits to the nano-dollar."""
    return None if value is None else format(value.quantize(NANO), "f")


def _row(day: date | None, ours: Side, theirs: Side | None) -> dict[str, Any]:
    """One comparison; `theirs` is None for a day never pulled, so OpenAI's fields are null, not zero."""
    diff = None if theirs is None else theirs.cost - ours.cost
    pct = (diff * 100 / theirs.cost).quantize(PCT) if theirs and theirs.cost else None
    return {
        "day": day.isoformat() if day else None,
        "our_cost_usd": _text(ours.cost),
        "openai_cost_usd": _text(theirs.cost) if theirs else None,
        "diff_usd": _text(diff),
        "diff_pct": None if pct is None else format(pct, "f"),
        "our_input_tokens": ours.input_tokens,
        "openai_input_tokens": theirs.input_tokens if theirs else None,
        "our_output_tokens": ours.output_tokens,
        "openai_output_tokens": theirs.output_tokens if theirs else None,
        "our_requests": ours.requests,
        "openai_requests": theirs.requests if theirs else None,
        "our_unpriced_requests": ours.unpriced,
    }


def shares(weights: list[Decimal], total: Decimal) -> list[Decimal]:
    """`total` split in proportion to `weights`, to the nano-dollar, summing exactly to `total` (largest remainder)."""
    weight_sum = sum(weights, ZERO)
    exact = [weight * total / weight_sum for weight in weights]
    parts = [value.quantize(NANO, rounding=ROUND_FLOOR) for value in exact]  # floor: what is left is never negative
    left = int((total - sum(parts, ZERO)) / NANO)
    for index in sorted(range(len(exact)), key=lambda i: exact[i] - parts[i], reverse=True)[:left]:
        parts[index] += NANO
    return parts


def untracked(day: date, items: list[LineItem], ours: dict[str | None, Side], total: Decimal) -> list[dict[str, Any]]:
    """A day's untracked spend `total` attributed to OpenAI's line items (see the module's docstring)."""
    if total <= 0:
        return []
    billed: dict[str | None, Decimal] = defaultdict(Decimal)
    for item in items:
        billed[item.model] += item.amount
    weights = []
    for item in items:
        if item.amount <= 0:
            weights.append(ZERO)
        elif not _matched(item, ours):
            weights.append(item.amount)
        else:
            beyond = billed[item.model] - ours[item.model].cost
            weights.append(beyond * item.amount / billed[item.model] if beyond > 0 else ZERO)
    if sum(weights, ZERO) <= 0:
        return []
    parts = shares(weights, total)
    rows = [
        {
            "day": day.isoformat(),
            "line_item": item.line_item,
            "model": item.model,
            "model_seen": _matched(item, ours),
            "kind": item.kind,
            "openai_cost_usd": _text(item.amount),
            "untracked_usd": _text(share),
        }
        for item, share in zip(items, parts, strict=True)
        if share > 0
    ]
    return sorted(rows, key=lambda row: Decimal(row["untracked_usd"]), reverse=True)


def _matched(item: LineItem, ours: dict[str | None, Side]) -> bool:
    """Whether some call of ours that day accounts for (part of) the line item."""
    return item.kind != OUTSIDE_CALLS and item.model is not None and item.model in ours


def _per_day(sides: dict[tuple[date, str | None], Side]) -> dict[date, dict[str | None, Side]]:
    grouped: dict[date, dict[str | None, Side]] = defaultdict(dict)
    for (day, model), side in sides.items():
        grouped[day][model] = side
    return grouped


def _sum(sides: Any) -> Side:
    total = Side()
    for side in sides:
        total.add(side.cost, side.input_tokens, side.output_tokens, side.requests, side.unpriced)
    return total


def reconciliation(con: duckdb.DuckDBPyConnection, from_day: date, to_day: date, by: str = "day") -> dict[str, Any]:
    """Rows per day (or per day and model) in [from_day, to_day), untracked spend by line item, and totals over
    the days pulled. OpenAI's fields are null for a day never pulled (not zero)."""
    if by not in BY:
        raise QueryError("by", f"{by!r} is not one of {', '.join(BY)}")
    days = [from_day, to_day]
    (theirs, items, pulled) = _openai(con, days, _tool_calls(con, days))
    ours_by_day, theirs_by_day = _per_day(_ours(con, days)), _per_day(theirs)
    rows: list[dict[str, Any]] = []
    lost: list[dict[str, Any]] = []
    our_total, their_total = Side(), Side()
    for day in sorted(set(ours_by_day) | set(pulled)):
        our_models, their_models = ours_by_day.get(day, {}), theirs_by_day.get(day, {})
        our_day, their_day = _sum(our_models.values()), _sum(their_models.values())
        if by == "day":
            rows.append(_row(day, our_day, their_day if day in pulled else None))
        else:
            for model in sorted(set(our_models) | set(their_models), key=lambda name: (name is None, name or "")):
                theirs_of_model = their_models.get(model, Side()) if day in pulled else None
                row = _row(day, our_models.get(model, Side()), theirs_of_model)
                rows.append({"day": row.pop("day"), "model": model, **row})
        if day in pulled:
            our_total, their_total = _sum([our_total, our_day]), _sum([their_total, their_day])
            day_items = [item for item in items if item.day == day]
            lost += untracked(day, day_items, our_models, their_day.cost - our_day.cost)
    totals = _row(None, our_total, their_total if pulled else None)
    return {
        "from": from_day.isoformat(),
        "to": to_day.isoformat(),
        "by": by,
        "rows": rows,
        "untracked": lost,
        "totals": {
            "days_pulled": len(pulled),
            **{name: totals[name] for name in ("our_cost_usd", "openai_cost_usd", "diff_usd", "diff_pct")},
            "untracked_usd": _text(sum((Decimal(row["untracked_usd"]) for row in lost), ZERO)),
        },
        "last_pulled_at": max(pulled.values()).astimezone(UTC).isoformat() if pulled else None,
    }


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(0), UTC)


def gap_pct(con: duckdb.DuckDBPyConnection, start: datetime, end: datetime) -> tuple[float | None, int]:
    """`reconciliation_gap_pct` for the alert engine: |OpenAI's cost - ours| as a % of OpenAI's, and our requests.

    Over the complete days (pulled after they ended) lying wholly in [start, end); for a window holding no such
    day (shorter than a day, or today), the latest complete day that ended by `end`. None without such a day or
    when OpenAI billed nothing.
    """
    pulled = con.execute(
        "SELECT day, pulled_at FROM openai_pulled_days WHERE day < ? ORDER BY day", [end.astimezone(UTC).date()]
    ).fetchall()
    ends = {day: _midnight(day + timedelta(days=1)) for day, _ in pulled}
    complete = [day for day, pulled_at in pulled if pulled_at >= ends[day] and ends[day] <= end]
    days = [day for day in complete if _midnight(day) >= start] or complete[-1:]
    if not days:
        return None, 0
    placeholders = ", ".join("?" * len(days))
    (ours, requests) = con.execute(
        f"SELECT coalesce(sum(cost_usd), 0), coalesce(sum(requests) FILTER (WHERE status = 'ok'), 0) "
        f"FROM llm_calls_daily WHERE day IN ({placeholders}) AND {OPENAI_CALLS}",
        days,
    ).fetchone()
    (theirs,) = con.execute(
        f"SELECT coalesce(sum(amount), 0) FROM openai_costs WHERE currency = 'usd' AND day IN ({placeholders})", days
    ).fetchone()
    if not theirs:
        return None, int(requests)
    return float(abs(Decimal(theirs) - Decimal(ours)) * 100 / Decimal(theirs)), int(requests)
