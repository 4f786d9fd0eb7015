"""The collector's alert API for the dashboard: rules (list, create, update, delete, preview), the event history
and acknowledgements, silences, and budget rules' spend and forecast (from the summary endpoint).

Reads are cached for a few seconds; writes are never cached and clear the read caches, so the next render
shows what the collector now holds.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx2
import streamlit as st

from dashboard.data import client
from dashboard.data.client import ApiError
from dashboard.parts import ui
from dashboard.parts.filters import iso, utc_day_of

RULES_PATH = "/api/v1/alert-rules"
EVENTS_PATH = "/api/v1/alert-events"
SILENCES_PATH = "/api/v1/silences"
READ_TTL = 5  # seconds: state changes should show up quickly


class RuleRejectedError(ApiError):
    """The collector refused a rule, a silence or an acknowledgement (422): which field, and why, as it said."""

    def __init__(self, message: str, field: str | None) -> None:
        super().__init__(message, 422, field)
        self.field = field


def _request(
    method: str,
    api: str,
    token: str | None,
    path: str,
    *,
    params: list[tuple[str, str]] | None = None,
    body: Any = None,
) -> httpx2.Response:
    """One call to the alert API (through the dashboard's one HTTP function); a 422 is a RuleRejectedError."""
    try:
        return client.request(method, api, token, path, params or [], body)
    except ApiError as error:
        if error.status == 422:
            raise RuleRejectedError(error.detail, error.parameter) from None
        raise


@st.cache_data(ttl=READ_TTL, show_spinner=False, max_entries=20)
def rules(api: str, token: str | None) -> list[dict[str, Any]]:
    """Every rule with its current state and value (channel URLs masked), as the API sends them."""
    return _request("GET", api, token, RULES_PATH).json()["rules"]


@st.cache_data(ttl=READ_TTL, show_spinner=False, max_entries=20)
def events(api: str, token: str | None, limit: int = 100) -> list[dict[str, Any]]:
    """State changes, newest first."""
    return _request("GET", api, token, EVENTS_PATH, params=[("limit", str(limit))]).json()["events"]


@st.cache_data(ttl=READ_TTL, show_spinner=False, max_entries=20)
def delivery_attempts(api: str, token: str | None) -> list[dict[str, Any]]:
    """Notification delivery attempts, newest first (channel hosts only)."""
    return _request("GET", api, token, "/api/v1/notification-attempts").json()["attempts"]


@st.cache_data(ttl=READ_TTL, show_spinner=False, max_entries=20)
def silences(api: str, token: str | None) -> list[dict[str, Any]]:
    """Every silence, newest first, with whether it is still active."""
    return _request("GET", api, token, SILENCES_PATH).json()["silences"]


def preview(api: str, token: str | None, body: dict[str, Any]) -> dict[str, Any]:
    """A draft rule replayed hour by hour over the last 7 days: points (time, value, requests, state, severity, the
    anomaly band's lower and upper) and fired_at; for a grouped rule the same per group (`groups`), with the cap
    (`max_groups`) and how many groups it left out."""
    return _request("POST", api, token, f"{RULES_PATH}/preview", body=body).json()


def send_test(api: str, token: str | None, rule_id: int) -> int:
    """Ask the collector to send a test notification to the rule's channels; how many channels."""
    return int(_request("POST", api, token, f"{RULES_PATH}/{rule_id}/test").json()["channels"])


def clear() -> None:
    """Forget cached reads (after any write)."""
    rules.clear()
    events.clear()
    silences.clear()


def create_rule(api: str, token: str | None, body: dict[str, Any]) -> int:
    """POST a new rule; its id."""
    try:
        return int(_request("POST", api, token, RULES_PATH, body=body).json()["id"])
    finally:
        clear()


def update_rule(api: str, token: str | None, rule_id: int, body: dict[str, Any]) -> None:
    """PUT a rule's full body (channels sent are the channels kept: the API never returns real URLs)."""
    try:
        _request("PUT", api, token, f"{RULES_PATH}/{rule_id}", body=body)
    finally:
        clear()


def delete_rule(api: str, token: str | None, rule_id: int) -> None:
    """DELETE a rule."""
    try:
        _request("DELETE", api, token, f"{RULES_PATH}/{rule_id}")
    finally:
        clear()


def create_silence(api: str, token: str | None, body: dict[str, Any]) -> int:
    """POST a silence (rule_id, group, filters, ends_at, created_by, reason); its id."""
    try:
        return int(_request("POST", api, token, SILENCES_PATH, body=body).json()["id"])
    finally:
        clear()


def delete_silence(api: str, token: str | None, silence_id: int) -> None:
    """End a silence now."""
    try:
        _request("DELETE", api, token, f"{SILENCES_PATH}/{silence_id}")
    finally:
        clear()


def acknowledge(api: str, token: str | None, event_id: int, by: str) -> dict[str, Any]:
    """Mark a firing event as seen by `by`; the event as the API now shows it."""
    try:
        return _request("POST", api, token, f"{EVENTS_PATH}/{event_id}/ack", body={"by": by}).json()
    finally:
        clear()


# What only some rules have: sent back when set, so a rule read and PUT again stays the same rule.
KIND_FIELDS = ("kind", "group_by", "max_groups", "warning_threshold", "baseline", "sensitivity")


def editable_body(rule: dict[str, Any], channels: list[dict[str, str]], **changes: Any) -> dict[str, Any]:
    """A rule as GET shows it, turned back into a PUT body with `channels` (masked ones keep their stored URLs)
    and `changes`."""
    body = {
        "name": rule["name"],
        "metric": rule["metric"],
        "window": rule["window"],
        "op": rule["op"],
        "threshold": rule["threshold"],
        "for": rule.get("for"),
        "filters": rule.get("filters") or {},
        "channels": channels,
        "enabled": rule["enabled"],
        "min_requests": rule.get("min_requests") or 0,
    }
    if rule.get("enforce"):  # only when set: a collector older than the guard knows no such field
        body["enforce"] = rule["enforce"]
    body.update({name: rule[name] for name in KIND_FIELDS if rule.get(name) is not None})
    body.update(changes)
    return body


BUDGET_OPS = (">", ">=")
PERIOD_ENDS = {"day": "the end of the day", "month": "month end"}
PERIOD_SO_FAR = {"day": "today", "month": "this month"}


def budget_period(rule: dict[str, Any]) -> str | None:
    """The UTC period a budget rule limits (`day` or `month`: calendar cost, or the month's forecast); else None."""
    if rule["op"] not in BUDGET_OPS:
        return None
    if rule["metric"] == "cost_forecast_month":
        return "month"
    if rule["metric"] == "cost" and rule["window"] in PERIOD_ENDS:
        return str(rule["window"])
    return None


def period_bounds(period: str, now: datetime) -> tuple[datetime, datetime]:
    """The whole UTC day or month that a window ending at `now` lies in (filters.utc_day_of), [start, end)."""
    day = utc_day_of(now)
    if period == "day":
        return day, day + timedelta(days=1)
    start = day.replace(day=1)
    return start, (start + timedelta(days=32)).replace(day=1)


def rule_params(rule: dict[str, Any], start: datetime, end: datetime) -> client.Params:
    """Summary parameters for the calls a rule watches (its filters use the API's own names) in [start, end)."""
    filters = [(name, value) for name, values in (rule.get("filters") or {}).items() for value in values]
    return (("from", iso(start)), ("to", iso(end)), *filters)


@dataclass(frozen=True)
class Budget:
    """A budget rule at one moment: spent so far in its UTC day or month, and where that pace ends the period."""

    name: str
    period: str
    op: str
    limit: Decimal
    spent: Decimal
    forecast: Decimal
    unpriced: int

    def crosses(self, amount: Decimal) -> bool:
        """Whether `amount` is past the limit, by the rule's own comparison (> or >=)."""
        return amount > self.limit if self.op == ">" else amount >= self.limit

    def bars(self) -> list[tuple[float, str]]:
        """(fill from 0 to 1, label) for a spend bar and a forecast bar, each against the limit."""
        limit = ui.usd(self.limit)
        so_far = PERIOD_SO_FAR[self.period]
        spent = f"{self.name}: spent {ui.usd(self.spent)} {so_far} ({self._share(self.spent)} of {limit})"
        if self.crosses(self.spent):
            spent += " — over the limit"
        if self.unpriced:
            spent += f"; {ui.count(self.unpriced)} unpriced calls not included"
        forecast = (
            f"{self.name}: forecast {ui.usd(self.forecast)} by {PERIOD_ENDS[self.period]} "
            f"({self._share(self.forecast)} of {limit})"
        )
        if self.crosses(self.forecast) and not self.crosses(self.spent):
            forecast += " — on course to exceed it"
        return [(self._fill(self.spent), spent), (self._fill(self.forecast), forecast)]

    def _fill(self, amount: Decimal) -> float:
        if self.limit <= 0:
            return 1.0 if amount > 0 else 0.0
        return float(min(amount / self.limit, Decimal(1)))

    def _share(self, amount: Decimal) -> str:
        return f"{amount / self.limit:.0%}" if self.limit > 0 else "—"


def projection(spent: Decimal, start: datetime, end: datetime, now: datetime) -> Decimal:
    """Spend at the period's end if it goes on at the pace so far (the collector's cost_forecast_month formula)."""
    micro = timedelta(microseconds=1)
    elapsed = max((now - start) // micro, 1)
    return spent * Decimal((end - start) // micro) / Decimal(elapsed)


def budget(api: str, token: str | None, rule: dict[str, Any], now: datetime) -> Budget | None:
    """A budget rule's spend so far and forecast, from the summary of the calls it watches; None if not a budget."""
    period = budget_period(rule)
    if period is None:
        return None
    start, end = period_bounds(period, now)
    summary = client.summary(api, token, rule_params(rule, start, now))
    spent = ui.decimal(summary["cost_usd"]) or Decimal(0)
    return Budget(
        name=rule["name"],
        period=period,
        op=rule["op"],
        limit=Decimal(str(rule["threshold"])),
        spent=spent,
        forecast=projection(spent, start, end, now),
        unpriced=int(summary["unpriced_requests"] or 0),
    )


def budgets(api: str, token: str | None, rules: list[dict[str, Any]], now: datetime) -> list[Budget]:
    """Every budget rule among `rules`, in order."""
    found = (budget(api, token, rule, now) for rule in rules)
    return [item for item in found if item is not None]
