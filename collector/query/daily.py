"""Splitting a query window between the daily rollup and the raw calls.

Whole UTC days inside the window come from `llm_calls_daily` (collector/store/rollups.py); the partial days at its
edges come from `llm_calls`. Filters the rollup doesn't keep (end_user, guard_action) send the whole window to the raw
calls.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from collector.query.filters import Filters
from collector.store.rollups import KEYS


@dataclass(frozen=True)
class Split:
    rollup_where: str  # for llm_calls_daily: whole days and the label filters (always a WHERE: " AND ..." may follow)
    rollup_params: list[Any]
    edges: tuple[Filters, ...]  # for llm_calls: the partial days at either end


def split(filters: Filters) -> Split | None:
    """The window as whole days from the rollup plus raw edges, or None when the raw calls must serve it all."""
    first_day = _midnight_at_or_after(filters.start) if filters.start else None
    end_day = _midnight_at_or_before(filters.end) if filters.end else None
    if not set(filters.equals) <= set(KEYS) or (first_day and end_day and first_day >= end_day):
        return None
    label_where, label_params = replace(filters, start=None, end=None).where()
    clauses = [clause for clause, bound in (("day >= ?", first_day), ("day < ?", end_day)) if bound is not None]
    if label_where:
        clauses.append(label_where.removeprefix(" WHERE "))
    params = [*(bound.date() for bound in (first_day, end_day) if bound is not None), *label_params]
    edges = tuple(
        edge
        for edge in (
            replace(filters, end=first_day) if first_day and first_day != filters.start else None,
            replace(filters, start=end_day) if end_day and end_day != filters.end else None,
        )
        if edge is not None
    )
    return Split(" WHERE " + (" AND ".join(clauses) or "TRUE"), params, edges)


def union(
    parts: Split,
    rollup_sql: str,
    raw_sql: str,
    where_of: Callable[[Filters], tuple[str, list[Any]]] = Filters.where,
) -> tuple[str, list[Any]]:
    """One relation of the rollup's whole days and the raw edges: `rollup_sql` and `raw_sql` are templates whose
    `{where}` takes each part's WHERE clause (`where_of` makes the raw parts' clauses)."""
    sql = [rollup_sql.format(where=parts.rollup_where)]
    params = list(parts.rollup_params)
    for edge in parts.edges:
        where, edge_params = where_of(edge)
        sql.append(raw_sql.format(where=where))
        params.extend(edge_params)
    return " UNION ALL ".join(sql), params


def _midnight_at_or_before(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def _midnight_at_or_after(moment: datetime) -> datetime:
    midnight = _midnight_at_or_before(moment)
    return midnight if midnight == moment else midnight + timedelta(days=1)
