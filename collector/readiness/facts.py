"""Gathering the facts items are judged on: the aggregate, scrubbed-secret and worst-call queries over a scope,
read from the readiness rollup (collector/store/readiness_rollup.py) and, for what it can't answer, the raw calls."""

from __future__ import annotations

import contextlib
import re
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pyarrow as pa

from collector.query.filters import sample_clause
from collector.readiness.items import ITEMS
from collector.readiness.model import Context, Facts, Item, Scope
from collector.store import readiness_rollup
from collector.store.rollups import UTC_DAY


def _bind(sql: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """The named parameters `sql` uses (DuckDB refuses unused ones)."""
    return {name: value for name, value in params.items() if re.search(rf"\${name}\b", sql)}


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
    return f"{where} AND {_environment(calls)}"


def _environment(calls: str) -> str:
    return "list_contains($environments, environment)" if calls == "production" else "true"


@dataclass(frozen=True)
class Rows:
    """Relations of a scope's rollup rows, as `scoped` names them: per UTC day, and over the whole period."""

    days: str
    period: str


@contextlib.contextmanager
def scoped(con: Any, scope: Scope) -> Iterator[Rows]:
    """The scope's rollup rows, read once for the queries of one scorecard (see `rolled_up`), per day and merged
    over the period (a month of days judged as a few hundred rows). Each part is its own query: DuckDB 1.5.5 can
    hang on a UNION ALL of the table's rows and the raw edges' GROUP BY."""
    tables = [con.execute(sql, params).to_arrow_table() for sql, params in rolled_up(scope)]
    rows = Rows(f"readiness_days_{uuid.uuid4().hex}", f"readiness_period_{uuid.uuid4().hex}")
    parts = f"readiness_parts_{uuid.uuid4().hex}"
    con.register(parts, pa.concat_tables(tables))
    try:
        # A key whose calls all fell outside the scope (taken off a whole day) nets to no calls: no row.
        days = con.execute(f"{readiness_rollup.merged(parts)} HAVING sum(calls) <> 0").to_arrow_table()
        con.register(rows.days, days)
        period = con.execute(readiness_rollup.merged(rows.days, readiness_rollup.KEYS[1:])).to_arrow_table()
        con.register(rows.period, period)
        yield rows
    finally:
        for name in (parts, rows.days, rows.period):
            con.unregister(name)


def rolled_up(scope: Scope) -> list[tuple[str, dict[str, Any]]]:
    """SELECTs (with their parameters) of the service's rollup rows in the scope, in the table's columns, to be
    added up by key: whole UTC days from `readiness_daily`; a partial day at either end rolled up from its raw calls
    in the scope the same way or, when most of the day is in it, the day's rows less those of its raw calls outside
    the scope (every measure is a count or a sum), so at most half a day of raw calls is read at each end."""
    first = _midnight(scope.start) + (timedelta(days=1) if scope.start != _midnight(scope.start) else timedelta())
    last = _midnight(scope.end)
    parts = []
    if first < last:
        parts.append(_days(scope.service, first, last))
    pieces = [(_midnight(scope.start), scope.start, min(scope.end, first))] if scope.start < first else []
    if last < scope.end and last >= first:
        pieces.append((last, last, scope.end))
    for midnight, start, end in pieces:
        day_end = midnight + timedelta(days=1)
        if (end - start) * 2 <= day_end - midnight:
            parts.append(_raw(scope.service, start, end))
        else:
            outside = [(midnight, start), (end, day_end)]
            parts += [_days(scope.service, midnight, day_end)]
            parts += [_raw(scope.service, *piece, negated=True) for piece in outside if piece[0] < piece[1]]
    return parts


def _days(service: str, first: datetime, last: datetime) -> tuple[str, dict[str, Any]]:
    sql = "SELECT * FROM readiness_daily WHERE service = $service AND day >= $first AND day < $last"
    return sql, {"service": service, "first": first.date(), "last": last.date()}


def _raw(service: str, start: datetime, end: datetime, negated: bool = False) -> tuple[str, dict[str, Any]]:
    sql = readiness_rollup.aggregate(
        "llm_calls", " WHERE service = $service AND start_time >= $start AND start_time < $end"
    )
    if negated:
        measures = ", ".join(f"-{name} AS {name}" for name in readiness_rollup.MEASURES)
        sql = f"SELECT {', '.join(readiness_rollup.KEYS)}, {measures} FROM ({sql})"
    return sql, {"service": service, "start": start, "end": end}


def _midnight(moment: datetime) -> datetime:
    moment = moment.astimezone(UTC)
    return datetime(moment.year, moment.month, moment.day, tzinfo=UTC)


def aggregate(
    con: Any, scope: Scope, context: Context, calls: str, by_day: bool, source: Rows | None = None
) -> dict[date | None, dict[str, Any]]:
    """Every aggregate of the items judged on `calls`, for the whole period or per UTC day, from the scope's rollup
    rows (`source`, relations named by `scoped`, else read here). The percentiles of the whole period come from
    the raw calls (sampled above SAMPLE_ABOVE calls); per day they are None (no scored item reads them: a history
    judges only those)."""
    # All items in one query: a scorecard is two of these plus a few bounded reads per failed item, a history two.
    names, sqls, histograms, raw = ["calls"], ["coalesce(sum(calls), 0)"], set(), {}
    for item in ITEMS:
        if item.calls == calls:
            for name, sql in item.aggregates.items():
                rolled = rollup_sql(sql)
                if rolled is None:
                    raw[f"{item.id}:{name}"] = sql
                    continue
                names.append(f"{item.id}:{name}")
                sqls.append(rolled)
                if "histogram(" in sql:
                    histograms.add(names[-1])
    params = _params(scope, context)
    if source is None:
        parts = rolled_up(scope)
        if len(parts) > 1:
            with scoped(con, scope) as rows:
                return aggregate(con, scope, context, calls, by_day, rows)
        ((relation, rollup_params),) = parts  # whole days (a history), or a scope inside one day
        source, params = Rows(f"({relation})", f"({relation})"), {**params, **rollup_params}
    day = "day, " if by_day else "NULL AS day, "
    relation = source.days if by_day else source.period
    sql = (
        f"SELECT {day}{', '.join(sqls)} FROM {relation} WHERE {_environment(calls)}{' GROUP BY day' if by_day else ''}"
    )
    rows = con.execute(sql, _bind(sql, params)).fetchall()
    found = {row[0]: dict(zip(names, row[1:], strict=True)) for row in rows}
    for values in found.values():
        values.update({name: _histogram(values[name]) for name in histograms})
        values.update(dict.fromkeys(raw))
    if raw and not by_day:
        # As the query API's percentiles: exact up to SAMPLE_ABOVE calls, else from a system sample of about
        # SAMPLE_ROWS calls (a p95 within about 0.1 percentile points; a maximum the sample's).
        sample = sample_clause(found[None]["calls"])
        sql = f"SELECT {', '.join(raw.values())} FROM llm_calls WHERE {_where(calls)}{sample}"
        found[None].update(zip(raw, con.execute(sql, _bind(sql, _params(scope, context))).fetchone(), strict=True))
    return found


def rollup_sql(sql: str) -> str | None:
    """An item's aggregate over the rollup's rows instead of the calls (`count(*)` adds up their calls, a sum adds
    their `*_sum`, a histogram lists each row's value and calls), or None when only the raw calls can answer it:
    a percentile, or the maximum of a value the rollup keeps a stand-in of."""
    stand_ins = {name for name, _, _ in readiness_rollup.STAND_INS}
    if "quantile" in sql or any(match[1] in stand_ins for match in re.finditer(r"\b(?:max|min)\((\w+)\)", sql)):
        return None
    summed = {name for name, _ in readiness_rollup.SUMMED}
    out, at = [], 0
    for match in re.finditer(r"\b(count\(\*\)|sum\(|histogram\()", sql):
        if match.start() < at:
            continue
        out.append(sql[at : match.start()])
        if match[1] == "count(*)":
            end = match.end()
            if sql.startswith(" FILTER (", end):
                end = _closing(sql, end + len(" FILTER ("))
            out.append(f"coalesce(sum(calls){sql[match.end() : end]}, 0)")
        else:
            end = _closing(sql, match.end())
            inner = sql[match.end() : end - 1]
            if match[1] == "histogram(":
                out.append(f"list({{'key': {inner}, 'calls': calls}})")
            else:
                out.append(f"sum({inner}_sum)" if inner in summed else f"sum(({inner}) * calls)")
        at = end
    out.append(sql[at:])
    return _filters_as_case("".join(out))


def _filters_as_case(sql: str) -> str:
    """`sum(x) FILTER (WHERE c)` as `sum(CASE WHEN c THEN x END)`: the same sum (NULL over no rows either way), but
    DuckDB 1.5 spends ~0.7 ms per FILTER clause even over the few hundred rollup rows of a scorecard, whose
    production aggregates hold 83 of them (70 ms against 16 ms)."""
    out, at = [], 0
    for match in re.finditer(r"\bsum\(([^()]*)\) FILTER \(WHERE ", sql):
        if match.start() < at:
            continue
        end = _closing(sql, match.end())
        out += [sql[at : match.start()], f"sum(CASE WHEN {sql[match.end() : end - 1]} THEN {match[1]} END)"]
        at = end
    out.append(sql[at:])
    return "".join(out)


def _closing(sql: str, start: int) -> int:
    """The index after the parenthesis closing the one opened just before `start`."""
    depth = 1
    for index in range(start, len(sql)):
        depth += {"(": 1, ")": -1}.get(sql[index], 0)
        if depth == 0:
            return index + 1
    raise ValueError(f"unbalanced parentheses in {sql!r}")


def _histogram(entries: list[dict[str, Any]] | None) -> dict[Any, int] | None:
    """A histogram's map (keys in order, as DuckDB's) from the rollup rows' (value, calls) entries."""
    if entries is None:
        return None
    counts: dict[Any, int] = {}
    for entry in entries:
        counts[entry["key"]] = counts.get(entry["key"], 0) + entry["calls"]
    return dict(sorted(counts.items()))


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


def details(con: Any, scope: Scope, context: Context, item: Item, source: Rows) -> dict[str, Any]:
    """The groups with the most calls breaking the rule (from the scope's rollup rows, `source`), and the newest
    request ids of such calls: read from the raw calls of the newest days that hold enough of them."""
    key, group_sql = item.group
    params = _params(scope, context)
    breaking = f"FROM {source.period} WHERE {_environment(item.calls)} AND ({item.bad})"
    sql = f"SELECT {group_sql} AS grp, sum(calls) AS n {breaking} GROUP BY grp ORDER BY n DESC, grp NULLS LAST LIMIT 3"
    rows = con.execute(sql, _bind(sql, params)).fetchall()
    examples: list[str] = []
    for group, _ in rows:
        if len(examples) < 3:
            examples += _newest_ids(con, scope, context, item, source, group, 3 - len(examples))
    return {"worst": [{key: group, "calls": int(n)} for group, n in rows], "example_request_ids": examples}


def _newest_ids(
    con: Any, scope: Scope, context: Context, item: Item, source: Rows, group: Any, wanted: int
) -> list[str]:
    """The request ids of the newest `wanted` calls of `group` breaking the rule: the rollup counts them per day, so
    the raw calls are read from the newest day that, with the later ones, holds enough (or the scope's start)."""
    _, group_sql = item.group
    params = {**_params(scope, context), "group": group}
    sql = (
        f"SELECT day, sum(calls) FROM {source.days} WHERE {_environment(item.calls)} AND ({item.bad}) "
        f"AND ({group_sql}) IS NOT DISTINCT FROM $group AND request_id IS NOT NULL GROUP BY day ORDER BY day DESC"
    )
    since, seen = scope.start, 0
    for day, count in con.execute(sql, _bind(sql, params)).fetchall():
        seen += count
        if seen >= wanted:
            since = max(scope.start, datetime(day.year, day.month, day.day, tzinfo=UTC))
            break
    sql = (
        f"SELECT request_id FROM llm_calls WHERE {_where(item.calls)} AND start_time >= $since AND ({item.bad}) "
        f"AND ({group_sql}) IS NOT DISTINCT FROM $group AND request_id IS NOT NULL "
        "ORDER BY start_time DESC LIMIT $wanted"
    )
    rows = con.execute(sql, _bind(sql, {**params, "since": since, "wanted": wanted})).fetchall()
    return [request_id for (request_id,) in rows]


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
