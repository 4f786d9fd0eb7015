"""Gathering the facts items are judged on: the aggregate, scrubbed-secret and worst-call queries over a scope."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

from collector.readiness.items import ITEMS
from collector.readiness.model import Context, Facts, Item, Scope
from collector.store.rollups import UTC_DAY


def _bind(sql: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """The named parameters `sql` uses (DuckDB refuses unused ones)."""
    return {name: value for name, value in params.items() if f"${name}" in sql}


def _params(scope: Scope, context: Context) -> dict[str, Any]:
    return {
        "service": scope.service,
        "start": scope.start,
        "end": scope.end,
        "environments": scope.environments,
        "production": list(scope.production_environments),
        "batch_features": list(context.batch_features),
    }


def _where(calls: str) -> str:
    where = "service = $service AND start_time >= $start AND start_time < $end"
    return f"{where} AND list_contains($environments, environment)" if calls == "production" else where


def aggregate(con: Any, scope: Scope, context: Context, calls: str, by_day: bool) -> dict[date | None, dict[str, Any]]:
    """Every aggregate of the items judged on `calls`, for the whole period or per UTC day."""
    # All items in one query: a scorecard is two of these plus one `details` per failed item, a history two.
    names, sqls = ["calls"], ["count(*)"]
    for item in ITEMS:
        if item.calls == calls:
            for name, sql in item.aggregates.items():
                names.append(f"{item.id}:{name}")
                sqls.append(sql)
    day = f"{UTC_DAY} AS day, " if by_day else "NULL AS day, "
    sql = f"SELECT {day}{', '.join(sqls)} FROM llm_calls WHERE {_where(calls)}{' GROUP BY day' if by_day else ''}"
    rows = con.execute(sql, _bind(sql, _params(scope, context))).fetchall()
    return {row[0]: dict(zip(names, row[1:], strict=True)) for row in rows}


def scrubbed(con: Any, scope: Scope, by_day: bool) -> dict[date | None, dict[str, int]]:
    """How many values of each column were scrubbed as API keys at ingest, for the whole period or per UTC day."""
    day = f"{UTC_DAY}" if by_day else "NULL"
    sql = (
        f"SELECT {day} AS day, column_name, count(*) FROM scrubbed_secrets WHERE service = $service "
        "AND start_time >= $start AND start_time < $end AND list_contains($environments, environment) "
        "GROUP BY ALL ORDER BY ALL"
    )
    found: dict[date | None, dict[str, int]] = {}
    params = {"service": scope.service, "start": scope.start, "end": scope.end, "environments": scope.environments}
    for day_value, column, count in con.execute(sql, params).fetchall():
        found.setdefault(day_value, {})[column] = count
    return found


def details(con: Any, scope: Scope, context: Context, item: Item) -> dict[str, Any]:
    """The groups with the most calls breaking the rule, and the newest request ids of such calls."""
    key, group_sql = item.group
    sql = (
        f"SELECT {group_sql} AS grp, count(*) AS n, arg_max(request_id, start_time, 3) FILTER "
        f"(WHERE request_id IS NOT NULL) FROM llm_calls WHERE {_where(item.calls)} "
        f"AND ({item.bad}) GROUP BY grp ORDER BY n DESC, grp NULLS LAST LIMIT 3"
    )
    rows = con.execute(sql, _bind(sql, _params(scope, context))).fetchall()
    examples = [request_id for _, _, ids in rows for request_id in (ids or [])][:3]
    return {"worst": [{key: group, "calls": n} for group, n, _ in rows], "example_request_ids": examples}


def assemble(
    scope: Scope, context: Context, aggregates: Mapping[str, dict[str, Any]], secrets: Mapping[str, int],
    as_of: datetime | None,
) -> Facts:  # fmt: skip
    """Every item's facts in one: each aggregate is named `item id:name`, so the two kinds of calls merge."""
    values = {**aggregates["production"], **aggregates["all"]}
    calls = {kind: aggregates[kind].get("calls", 0) for kind in ("production", "all")}
    return Facts(scope, context, values, calls, secrets, as_of)


def own(item: Item, facts: Facts) -> Facts:
    """`facts` with only `item`'s aggregates, under their own names."""
    prefix = f"{item.id}:"
    values = {name[len(prefix) :]: value for name, value in facts.values.items() if name.startswith(prefix)}
    return Facts(facts.scope, facts.context, values, facts.calls, facts.secrets, facts.as_of)
