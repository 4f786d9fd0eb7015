"""The calls list's shortcuts (the newest hour alone when it holds a page; the slowest calls' full rows read only
from the N-th slowest duration on) give the same pages as the plain ordered query over every call."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import duckdb
import pytest

from collector.query import reads
from collector.query.filters import Filters
from tests.collector.test_hourly import BASE, loaded  # noqa: F401 (the fixture)
from tests.collector_harness import RunningCollector

WINDOWS = [
    (None, None),
    (BASE + timedelta(hours=2), BASE + timedelta(hours=11)),  # ends on an hour
    (BASE + timedelta(minutes=37, seconds=11), BASE + timedelta(hours=9, minutes=4)),
]
EQUALS = [{}, {"service": ["search-api"]}, {"end_user": ["user-1"], "status": ["error"]}]


def plain(con: duckdb.DuckDBPyConnection, filters: Filters, order: str) -> list[tuple[str, str]]:
    where, params = filters.where()
    return con.execute(
        f"SELECT trace_id, span_id FROM llm_calls{where} ORDER BY {reads.ORDERS[order]}", params
    ).fetchall()


def keys(page: dict[str, Any]) -> list[tuple[str, str]]:
    return [(call["trace_id"], call["span_id"]) for call in page["calls"]]


@pytest.mark.parametrize("limit", [1, 7, 100])
@pytest.mark.parametrize("equals", EQUALS, ids=str)
@pytest.mark.parametrize("window", WINDOWS, ids=str)
def test_paging_newest_first_gives_the_plain_order(
    loaded: RunningCollector,  # noqa: F811
    window: tuple[datetime | None, datetime | None],
    equals: dict[str, list[str]],
    limit: int,
) -> None:
    con = loaded.collector.store.reader()
    filters = Filters(start=window[0], end=window[1], equals=dict(equals))
    expected = plain(con, filters, "newest")
    seen: list[tuple[str, str]] = []
    cursor = None
    while True:
        page = reads.calls(con, filters, limit, cursor)
        seen += keys(page)
        if not (cursor := page["next_cursor"]):
            break
    assert seen == expected
    assert expected or equals


@pytest.mark.parametrize("limit", [1, 20, 1000])
@pytest.mark.parametrize("equals", EQUALS, ids=str)
@pytest.mark.parametrize("window", WINDOWS, ids=str)
def test_the_slowest_are_the_plain_orders_first(
    loaded: RunningCollector,  # noqa: F811
    window: tuple[datetime | None, datetime | None],
    equals: dict[str, list[str]],
    limit: int,
) -> None:
    con = loaded.collector.store.reader()
    filters = Filters(start=window[0], end=window[1], equals=dict(equals))
    assert keys(reads.calls(con, filters, limit, order="slowest")) == plain(con, filters, "slowest")[:limit]


def test_the_slowest_among_ties_and_calls_sharing_a_start(tmp_path) -> None:
    """Durations in whole milliseconds tie, and calls start at the same instant: the page is still the plain order's
    first rows, each call once, however many calls share the N-th slowest duration or a slow call's start."""
    from collector.store.file import Store

    store = Store(tmp_path / "ties.duckdb")
    try:
        with store.transaction() as con:
            con.execute(
                "INSERT INTO llm_calls (trace_id, span_id, start_time, duration_ms, status, source_dialect) "
                "SELECT printf('%032x', i % 40), printf('%016x', i), ?::TIMESTAMPTZ + to_seconds(i // 3), "
                "CASE WHEN i % 11 = 0 THEN NULL ELSE 100 + (i * 7) % 5 END, 'ok', 'llmledger' FROM range(300) t(i)",
                [BASE],
            )
        con = store.reader()
        for limit in (1, 5, 20, 61, 300):
            for filters in (Filters(), Filters(start=BASE + timedelta(seconds=20), end=BASE + timedelta(seconds=80))):
                page = keys(reads.calls(con, filters, limit, order="slowest"))
                assert page == plain(con, filters, "slowest")[:limit], (limit, filters)
                assert len(page) == len(set(page))
    finally:
        store.close()
