"""The collector's view of the guard (llmledger/guard/) for the dashboard: what it did to calls over time, which
circuits it opened lately, and the budgets it enforces with their spend so far."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import pandas as pd
import streamlit as st

from dashboard.data import client
from dashboard.parts.filters import iso
from llmledger import semconv as sc

BUDGETS_PATH = "/api/v1/guard/budgets"
READ_TTL = 5  # seconds: a budget being spent should show up quickly
ACTIONS = sc.GUARD_ACTIONS
CIRCUIT_OPEN = "circuit_open"
OPEN_CIRCUIT_WINDOW = timedelta(minutes=15)


def with_actions(params: client.Params, actions: tuple[str, ...] = ACTIONS) -> client.Params:
    """`params` narrowed to the calls the guard acted on (any of `actions`)."""
    return (*params, *(("guard_action", action) for action in actions))


def actions_over_time(api: str, token: str | None, params: client.Params) -> tuple[str, pd.DataFrame]:
    """Calls per bucket by what the guard did (time, group = action, value)."""
    return client.timeseries(api, token, with_actions(params), "requests", group_by="guard_action")


def action_counts(api: str, token: str | None, params: client.Params) -> dict[str, int]:
    """How many calls each guard action touched in the window (actions without calls: 0)."""
    frame = client.breakdown(api, token, with_actions(params), "guard_action", limit=len(ACTIONS))
    found = {str(row["group"]): int(row["requests"]) for _, row in frame.iterrows()} if not frame.empty else {}
    return {action: found.get(action, 0) for action in ACTIONS}


def open_circuits(api: str, token: str | None, filters: client.Params, now: datetime) -> pd.DataFrame:
    """Circuits (provider/model) that turned calls away in the 15 minutes before `now`: calls and when last seen."""
    window = (("from", iso(now - OPEN_CIRCUIT_WINDOW)), ("to", iso(now + timedelta(seconds=1))), *filters)
    _, frame = client.timeseries(
        api, token, with_actions(window, (CIRCUIT_OPEN,)), "requests", bucket="1m", group_by="guard_breaker"
    )
    frame = frame[frame["value"] > 0]
    if frame.empty:
        return pd.DataFrame(columns=["breaker", "calls", "last_seen"])
    grouped = frame.assign(breaker=frame["group"].fillna("(unknown)")).groupby("breaker")
    return (
        pd.DataFrame({"calls": grouped["value"].sum().astype("int64"), "last_seen": grouped["time"].max()})
        .reset_index()
        .sort_values(["last_seen", "breaker"], ascending=[False, True], ignore_index=True)
    )


@dataclass(frozen=True)
class Budget:
    """An enforced budget as the collector measures it: its limit, its spend so far, and what the guard does."""

    id: int
    name: str
    window: str
    window_start: datetime
    filters: dict[str, list[str]]
    op: str
    limit: Decimal
    spent: Decimal
    action: str
    downgrade_to: str | None

    @property
    def over(self) -> bool:
        """Whether the guard acts now, by the rule's own comparison."""
        return self.spent > self.limit if self.op == ">" else self.spent >= self.limit

    @property
    def fill(self) -> float:
        if self.limit <= 0:
            return 1.0 if self.over else 0.0
        return float(min(self.spent / self.limit, Decimal(1)))


def _budget(item: dict[str, Any]) -> Budget:
    return Budget(
        id=int(item["id"]),
        name=str(item["name"]),
        window=str(item["window"]),
        window_start=datetime.fromisoformat(item["window_start"]),
        filters={key: list(values) for key, values in (item.get("filters") or {}).items()},
        op=str(item.get("op") or ">"),
        limit=Decimal(item["limit_usd"]),
        spent=Decimal(item["spent_usd"]),
        action=str(item["action"]),
        downgrade_to=item.get("downgrade_to"),
    )


@st.cache_data(ttl=READ_TTL, show_spinner=False, max_entries=20)
def budgets(api: str, token: str | None) -> list[Budget]:
    """Every enabled budget with an enforce part, with its spend since its UTC day or month began."""
    body = client.request("GET", api, token, BUDGETS_PATH).json()
    return [_budget(item) for item in body["budgets"]]
