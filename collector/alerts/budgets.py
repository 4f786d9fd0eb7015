"""Enforced budgets and what each has spent so far: what the guard in every app process polls (llmledger/guard/).

All budgets are measured in one query. A budget's spend is the exact sum of `cost_usd` of the calls its filters
match since its UTC window started: from the daily rollup, which ingest keeps exact in the same transaction as the
calls (today included), unless its filters name end users, which the rollup doesn't keep (then from the raw calls).
The window has no end: a call stamped a little in the future by a skewed clock still counts against the budget.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from decimal import Context, Decimal
from typing import Any

from collector.alerts.readings import window_bounds
from collector.alerts.rules import Rule
from collector.query import daily
from collector.query.filters import Filters, jsonable

_NANO = Decimal("1e-9")
_WIDE = Context(prec=400)  # any finite double quantized to 1e-9 fits (the largest has 309 integer digits)


def enforced(rules: Iterable[tuple[int, Rule]]) -> list[tuple[int, Rule]]:
    """The enabled rules the guard enforces, in id order."""
    return [(rule_id, rule) for rule_id, rule in rules if rule.enabled and rule.enforce is not None]


def usd(value: float | Decimal) -> str:
    """Money as the API sends it: plain digits with nine decimals, never a float."""
    amount = value if isinstance(value, Decimal) else Decimal(repr(float(value)))
    return format(amount.quantize(_NANO, context=_WIDE), "f")


def _filters(rule: Rule, start: datetime) -> Filters:
    equals = {name: list(values) for name, values in rule.filters.items() if name != "model"}
    return Filters(start=start, end=None, equals=equals, models=list(rule.filters.get("model", [])))


def _spend_sql(budgets: list[tuple[int, Filters]]) -> tuple[str, list[Any]]:
    """One relation (id, cost_usd) of every budget's calls: rollup days where its filters allow, else raw calls."""
    parts: list[str] = []
    params: list[Any] = []
    for rule_id, filters in budgets:
        split = daily.split(filters)
        if split is None:
            where, where_params = filters.where()
            parts.append(f"SELECT ? AS id, cost_usd FROM llm_calls{where}")
            params += [rule_id, *where_params]
            continue
        parts.append(f"SELECT ? AS id, cost_usd FROM llm_calls_daily{split.rollup_where}")
        params += [rule_id, *split.rollup_params]
        for edge in split.edges:  # none for a window that starts at midnight and has no end; kept for safety
            where, where_params = edge.where()
            parts.append(f"SELECT ? AS id, cost_usd FROM llm_calls{where}")
            params += [rule_id, *where_params]
    return " UNION ALL ".join(parts), params


def spent(con: Any, rules: list[tuple[int, Rule]], now: datetime) -> dict[int, Decimal]:
    """Each rule's spend since its window's start at `now` (0 for a budget without priced calls)."""
    if not rules:
        return {}
    relation, params = _spend_sql(
        [(rule_id, _filters(rule, window_bounds(rule.window, now)[0])) for rule_id, rule in rules]
    )
    rows = con.execute(
        f"SELECT id, coalesce(sum(cost_usd), 0)::DECIMAL(38,9) FROM ({relation}) GROUP BY id", params
    ).fetchall()
    found = {int(rule_id): amount for rule_id, amount in rows}
    return {rule_id: found.get(rule_id, Decimal(0)) for rule_id, _rule in rules}


def answer(con: Any, rules: Iterable[tuple[int, Rule]], now: datetime) -> dict[str, Any]:
    """`GET /v1/guard/budgets`: every enabled enforced rule with its limit and spend so far, as of `now` (taken
    before the read, so every call stored by then is counted)."""
    chosen = enforced(rules)
    spend = spent(con, chosen, now)
    budgets = []
    for rule_id, rule in chosen:
        assert rule.enforce is not None  # (for the type checker: `enforced` keeps only these)
        budgets.append(
            {
                "id": rule_id,
                "name": rule.name,
                "window": rule.window,
                "window_start": jsonable(window_bounds(rule.window, now)[0]),
                "filters": rule.filters,
                "op": rule.op,
                "limit_usd": usd(rule.threshold),
                "spent_usd": usd(spend[rule_id]),
                "action": rule.enforce.action,
                "downgrade_to": rule.enforce.downgrade_to,
            }
        )
    return {"as_of": jsonable(now), "budgets": budgets}
