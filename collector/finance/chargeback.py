"""Chargeback: a month's cost by team, adding up to the bill.

From the FOCUS rows (collector/finance/focus.py): each team's tracked calls; calls with no team ("unattributed");
and, on days reconciled with OpenAI, spend no call accounts for ("untracked": its adjustments). Those two are
either shown apart or allocated to the teams in proportion to each team's tracked spend (largest remainder to the
nano-dollar, so the teams' rows still sum exactly to the total).
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, time
from decimal import Decimal
from typing import Any

import duckdb

from collector.finance import focus
from collector.query.filters import QueryError
from collector.reconcile.compare import shares

ALLOCATIONS = ("apart", "proportional")
UNATTRIBUTED = "(unattributed)"
UNTRACKED = "(untracked)"
ZERO = Decimal(0)


def check(allocate: str) -> None:
    if allocate not in ALLOCATIONS:
        raise QueryError("allocate", f"{allocate!r} is not one of {', '.join(ALLOCATIONS)}")


def rows(con: duckdb.DuckDBPyConnection, window: focus.Window) -> list[dict[str, Any]]:
    """What `by_team` reads of the window's FOCUS rows (its charge category, team and billed cost), with the calls'
    cost per team summed from the hourly rollup rather than the raw calls: a month is whole UTC hours, and the raw
    calls' sum by FOCUS's eight keys took 1-2 s for the 8.9 M calls of a month's first 8 days (a 100 M-call store),
    growing with the month. Days retention emptied and the reconciliation's adjustments come as in the FOCUS export."""
    bounds = [datetime.combine(day, time(0), UTC) for day in (window.start, window.end)]
    hourly = con.execute(
        "SELECT team, coalesce(sum(cost_usd), 0)::DECIMAL(38,9) FROM llm_calls_hourly "
        "WHERE hour >= ? AND hour < ? GROUP BY team",
        bounds,
    ).fetchall()
    out = [{"ChargeCategory": "Usage", "x_Team": team, "BilledCost": cost} for team, cost in hourly]
    for group in focus.rollup_groups(con, [window.start, window.end]):
        team = group["key"][2]  # day, service, team, ...
        out.append({"ChargeCategory": "Usage", "x_Team": team, "BilledCost": group["cost"]})
    return out + focus.reconciliation_rows(con, window)


def by_team(focus_rows: list[dict[str, Any]], allocate: str) -> dict[str, Any]:
    """`{"allocate", "total_usd", "teams": [{"team", "tracked_usd", "allocated_usd", "cost_usd", "share_pct"}]}`,
    top spenders first; the apart rows come last."""
    check(allocate)
    tracked: dict[str, Decimal] = defaultdict(Decimal)
    unattributed = untracked = ZERO
    for row in focus_rows:
        if row["ChargeCategory"] == "Adjustment":
            untracked += row["BilledCost"]
        elif row["x_Team"] is None:
            unattributed += row["BilledCost"]
        else:
            tracked[row["x_Team"]] += row["BilledCost"]
    total = sum(tracked.values(), ZERO) + unattributed + untracked
    teams = sorted(tracked, key=lambda team: (-tracked[team], team))
    allocated = dict.fromkeys(teams, ZERO)
    spread = unattributed + untracked
    weights = [tracked[team] for team in teams]
    if allocate == "proportional" and spread and sum(weights, ZERO) > 0:
        allocated = dict(zip(teams, shares(weights, spread), strict=True))
        apart: list[tuple[str, Decimal]] = []
    else:
        apart = [(name, amount) for name, amount in ((UNATTRIBUTED, unattributed), (UNTRACKED, untracked)) if amount]
    lines = [(team, tracked[team], allocated[team]) for team in teams] + [
        (name, ZERO, amount) for name, amount in apart
    ]
    return {
        "allocate": allocate,
        "total_usd": _text(total),
        "teams": [
            {
                "team": team,
                "tracked_usd": _text(own),
                "allocated_usd": _text(extra),
                "cost_usd": _text(own + extra),
                "share_pct": format(((own + extra) * 100 / total).quantize(Decimal("0.01")), "f") if total else None,
            }
            for team, own, extra in lines
        ],
    }


def _text(value: Decimal) -> str:
    return format(value.quantize(Decimal("0.000000001")), "f")
