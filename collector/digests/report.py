"""A digest's report: what it says about one period, read from the store, and how it reads in a message.

Spend comes from the daily rollup (exact, and it outlives raw-call retention), or the raw calls when the filters name
end users, which the rollup doesn't keep; money is Decimal throughout and shown to the nano-dollar it is stored to,
trailing zeros dropped (`$12.50`, `$0.000123`). The month's forecast and the budgets are as of the moment the report
is made; untracked spend is the organization's (OpenAI's bill has no teams), over the period's days pulled.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from collector.alerts import budgets
from collector.alerts.readings import month_bounds
from collector.alerts.rules import Rule
from collector.digests.spec import Digest, Period
from collector.query import daily
from collector.query.filters import UNPRICED, Filters
from collector.query.reports import breakdown
from collector.reconcile.compare import reconciliation
from collector.store.rollups import UTC_DAY

NANO = Decimal("0.000000001")
TOP = 5
ZERO = Decimal(0)


@dataclass(frozen=True)
class Ranked:
    """One of the top models or features: its name (None: calls without one), cost and calls."""

    name: str | None
    cost: Decimal
    requests: int


@dataclass(frozen=True)
class Budget:
    """A cost rule over a UTC day or month whose filters cover the digest's: its limit, spend, and projection."""

    rule_id: int
    name: str
    window: str
    limit: Decimal
    spent: Decimal
    projected: Decimal | None  # month budgets: spent so far carried to the month's end
    enforce: str | None  # the guard's action, when enforced


@dataclass(frozen=True)
class Report:
    digest: Digest
    period: Period
    made_at: datetime
    spend: Decimal
    previous_spend: Decimal
    requests: int
    errors: int
    unpriced: int  # calls the price book couldn't price: not in `spend`, and said so (never shown as $0 spent)
    daily: list[tuple[date, Decimal]]  # every day of the period, 0 when nothing was spent
    top_models: list[Ranked]
    top_features: list[Ranked]
    month: str  # "2026-03": the month of `made_at`
    month_to_date: Decimal
    month_forecast: Decimal
    budgets: list[Budget]
    untracked: Decimal | None  # None: no day of the period pulled from OpenAI
    untracked_days: int

    @property
    def error_rate(self) -> Decimal:
        return (Decimal(self.errors) / self.requests).quantize(Decimal("0.0001")) if self.requests else ZERO

    @property
    def where(self) -> str:
        return ", ".join(f"{key}={'|'.join(values)}" for key, values in self.digest.filters.items()) or "all calls"

    def change(self) -> str:
        """The change against the previous period: `+$2.50, +25.0%` (no percentage from nothing)."""
        diff = self.spend - self.previous_spend
        text = ("+" if diff >= 0 else "-") + money(abs(diff))
        if self.previous_spend:
            text += f", {(diff * 100 / self.previous_spend).quantize(Decimal('0.1')):+f}%"
        return text

    def lines(self) -> list[str]:
        """The report as plain-text lines (the body of every channel's message)."""
        unpriced = f"; {self.unpriced:,} unpriced call(s) not in it" if self.unpriced else ""
        lines = [
            f"Spend: {money(self.spend)} (previous period {money(self.previous_spend)}: {self.change()}{unpriced})",
            f"Requests: {self.requests:,}; errors: {self.errors:,} ({self.error_rate * 100:.2f}% error rate)",
            "Top models: " + _ranked(self.top_models),
            "Top features: " + _ranked(self.top_features),
            f"Month to date ({self.month}): {money(self.month_to_date)}, projected {money(self.month_forecast)} "
            "by the month's end",
        ]
        for budget in self.budgets:
            enforced = f", enforced: {budget.enforce}" if budget.enforce else ""
            line = f"Budget {budget.name!r} ({budget.window}{enforced}): {money(budget.spent)} of {money(budget.limit)}"
            if budget.projected is not None:
                over = budget.projected - budget.limit
                line += f", projected {money(budget.projected)}" + (f", over by {money(over)}" if over > 0 else "")
            lines.append(line)
        if self.untracked is not None:
            lines.append(f"Untracked spend (OpenAI's bill beyond our calls, whole organization, {self.untracked_days} "
                         f"day(s) pulled): {money(self.untracked)}")  # fmt: skip
        return lines

    def summary(self) -> str:
        return (f"{self.digest.schedule.capitalize()} report for {self.where}, {self.period.label} (UTC): "
                f"{money(self.spend)} spent ({self.change()}).")  # fmt: skip

    def html(self) -> str:
        rows = "".join(f"<li>{html.escape(line)}</li>" for line in self.lines())
        return f"<ul>{rows}</ul>"

    def as_json(self) -> dict[str, Any]:
        """The report's figures as the API sends them: money as plain-digit strings."""
        return {
            "digest": self.digest.name,
            "period": {"from": self.period.start.isoformat(), "to": self.period.end.isoformat()},
            "previous_period_from": self.period.previous_start.isoformat(),
            "made_at": self.made_at.astimezone(UTC).isoformat(),
            "filters": self.digest.filters,
            "spend_usd": usd(self.spend),
            "previous_spend_usd": usd(self.previous_spend),
            "change_usd": usd(self.spend - self.previous_spend),
            "requests": self.requests,
            "errors": self.errors,
            "unpriced_requests": self.unpriced,
            "error_rate": format(self.error_rate, "f"),
            "daily": [{"day": day.isoformat(), "cost_usd": usd(cost)} for day, cost in self.daily],
            "top_models": [_ranked_json(item) for item in self.top_models],
            "top_features": [_ranked_json(item) for item in self.top_features],
            "month": self.month,
            "month_to_date_usd": usd(self.month_to_date),
            "month_forecast_usd": usd(self.month_forecast),
            "budgets": [
                {
                    "rule_id": b.rule_id,
                    "name": b.name,
                    "window": b.window,
                    "limit_usd": usd(b.limit),
                    "spent_usd": usd(b.spent),
                    "projected_usd": None if b.projected is None else usd(b.projected),
                    "enforce": b.enforce,
                }
                for b in self.budgets
            ],
            "untracked_usd": None if self.untracked is None else usd(self.untracked),
            "untracked_days": self.untracked_days,
        }


def money(amount: Decimal) -> str:
    """Exact money for people: to the nano-dollar, trailing zeros dropped but cents kept (`$1,234.50`)."""
    exact = amount.quantize(NANO)
    whole, _, fraction = format(abs(exact), ",f").partition(".")
    return f"{'-' if exact < 0 else ''}${whole}.{fraction.rstrip('0').ljust(2, '0')}"


def usd(amount: Decimal) -> str:
    return format(amount.quantize(NANO), "f")


def _ranked(items: list[Ranked]) -> str:
    if not items:
        return "none"
    return "; ".join(f"{item.name or '(none)'} {money(item.cost)} ({item.requests:,} calls)" for item in items)


def _ranked_json(item: Ranked) -> dict[str, Any]:
    return {"name": item.name, "cost_usd": usd(item.cost), "requests": item.requests}


def _filters(digest: Digest, start: datetime, end: datetime) -> Filters:
    equals = {name: list(values) for name, values in digest.filters.items() if name != "model"}
    return Filters(start=start, end=end, equals=equals, models=list(digest.filters.get("model", [])))


def per_day(con: Any, filters: Filters) -> dict[date, tuple[int, int, Decimal, int]]:
    """Requests, errors, cost and unpriced calls per UTC day of the window: whole days from the rollup, the rest from
    raw calls."""
    raw = (
        f"SELECT {UTC_DAY} AS day, count(*) AS requests, count(*) FILTER (WHERE status = 'error') AS errors, "
        f"sum(cost_usd) AS cost_usd, count(*) FILTER (WHERE {UNPRICED}) AS unpriced "
        "FROM llm_calls{where} GROUP BY ALL"
    )
    parts = daily.split(filters)
    if parts is None:
        where, params = filters.where()
        source = raw.format(where=where)
    else:
        rollup = (
            "SELECT day, sum(requests) AS requests, coalesce(sum(requests) FILTER (WHERE status = 'error'), 0) AS "
            "errors, sum(cost_usd) AS cost_usd, sum(unpriced_requests) AS unpriced FROM llm_calls_daily{where} "
            "GROUP BY ALL"
        )
        source, params = daily.union(parts, rollup, raw)
    rows = con.execute(
        f"SELECT day, sum(requests)::BIGINT, sum(errors)::BIGINT, coalesce(sum(cost_usd), 0)::DECIMAL(38,9), "
        f"sum(unpriced)::BIGINT FROM ({source}) GROUP BY day",
        params,
    ).fetchall()
    return {
        day: (int(requests), int(errors), Decimal(cost), int(unpriced or 0))
        for day, requests, errors, cost, unpriced in rows
    }


def _top(con: Any, filters: Filters, group_by: str) -> list[Ranked]:
    groups = breakdown(con, filters, group_by, TOP)["groups"]
    return [Ranked(g["group"], Decimal(g["cost_usd"]), int(g["requests"])) for g in groups]


def covers(rule_filters: dict[str, list[str]], digest_filters: dict[str, list[str]]) -> bool:
    """Whether every call the digest reports on is one the rule counts: each of the rule's filters is one the digest
    has, with values among the rule's (a rule without filters covers every digest)."""
    return all(
        name in digest_filters and set(digest_filters[name]) <= set(values) for name, values in rule_filters.items()
    )


def _budgets(con: Any, digest: Digest, rules: list[tuple[int, Rule]], now: datetime) -> list[Budget]:
    chosen = [
        (rule_id, rule)
        for rule_id, rule in rules
        if rule.enabled and rule.kind == "threshold" and rule.metric == "cost" and rule.group_by is None
        and rule.window in ("day", "month") and covers(rule.filters, digest.filters)
    ]  # fmt: skip
    spent = budgets.spent(con, chosen, now)
    return [_budget(rule_id, rule, spent[rule_id], now) for rule_id, rule in chosen]


def _budget(rule_id: int, rule: Rule, spent: Decimal, now: datetime) -> Budget:
    projected = forecast(spent, now) if rule.window == "month" else None
    limit = Decimal(repr(rule.threshold))
    return Budget(
        rule_id, rule.name, rule.window, limit, spent, projected, rule.enforce.action if rule.enforce else None
    )


def forecast(month_to_date: Decimal, now: datetime) -> Decimal:
    """The month's spend so far carried linearly to its end (as the alert metric `cost_forecast_month` does)."""
    start, end = month_bounds(now)
    elapsed = Decimal(int((now - start).total_seconds() * 1_000_000)) or Decimal(1)
    return (month_to_date * Decimal(int((end - start).total_seconds() * 1_000_000)) / elapsed).quantize(NANO)


def build(con: Any, digest: Digest, period: Period, now: datetime, rules: list[tuple[int, Rule]]) -> Report:
    """The digest's report on `period`, made at `now` (the month's forecast and budgets are as of `now`); `rules` are
    the alert rules, among which the budgets covering the digest's filters."""
    days = per_day(con, _filters(digest, period.previous_start_time, period.end_time))
    nothing = (0, 0, ZERO, 0)
    current = [(day, days.get(day, nothing)) for day in _days(period.start, period.end)]
    previous = [days.get(day, nothing) for day in _days(period.previous_start, period.start)]
    month_start = month_bounds(now)[0]
    month_to_date = sum((cost for _r, _e, cost, _u in per_day(con, _filters(digest, month_start, now)).values()), ZERO)
    pulled = reconciliation(con, period.start, period.end)["totals"]
    in_period = _filters(digest, period.start_time, period.end_time)
    return Report(
        digest=digest,
        period=period,
        made_at=now,
        spend=sum((cost for _day, (_r, _e, cost, _u) in current), ZERO),
        previous_spend=sum((cost for _r, _e, cost, _u in previous), ZERO),
        requests=sum(requests for _day, (requests, _e, _c, _u) in current),
        errors=sum(errors for _day, (_r, errors, _c, _u) in current),
        unpriced=sum(unpriced for _day, (_r, _e, _c, unpriced) in current),
        daily=[(day, cost) for day, (_r, _e, cost, _u) in current],
        top_models=_top(con, in_period, "model"),
        top_features=_top(con, in_period, "feature"),
        month=f"{month_start:%Y-%m}",
        month_to_date=month_to_date,
        month_forecast=forecast(month_to_date, now),
        budgets=_budgets(con, digest, rules, now),
        untracked=Decimal(pulled["untracked_usd"]) if pulled["days_pulled"] else None,
        untracked_days=pulled["days_pulled"],
    )


def _days(start: date, end: date) -> list[date]:
    return [start + timedelta(days=offset) for offset in range((end - start).days)]
