"""The daily rollup stays exact as data arrives (re-sends, a span twice in one batch, late data), and the
finance CSV built from it equals the same roll-up computed from the raw calls, for any window and filters."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from collector.query.exports import neutralise
from collector.store import rollups
from collector.store.schema import LLM_CALLS_COLUMNS_M001
from llmledger import semconv as sc
from tests.collector_harness import RunningCollector
from tests.otlp_spans import BASE_NS, chat_attributes, request_with

PROTOBUF = {"content-type": "application/x-protobuf"}
HOUR_NS = 3_600 * 1_000_000_000
TEAMS = ("search", "support", None)
MODELS = ("gpt-4o-mini", "gpt-4.1", "mystery-model-x")


def spans_for(batch: int) -> list[dict[str, Any]]:
    return [
        chat_attributes(
            **{
                sc.REQUEST_ID: f"req_{batch}_{index}",
                sc.TEAM: TEAMS[(batch + index) % 3],
                sc.FEATURE: "answers" if index % 2 else None,
                sc.GEN_AI_REQUEST_MODEL: MODELS[index % 3],
                sc.GEN_AI_RESPONSE_MODEL: None if index % 3 == 2 else MODELS[index % 3],
                sc.END_USER: f"user-{index % 4}",
                sc.ERROR_TYPE: "RateLimitError" if index == 5 else None,
                sc.GEN_AI_USAGE_INPUT_TOKENS: 1000 + 37 * index + batch,
            }
        )
        for index in range(8)
    ]


def post(collector: RunningCollector, body: bytes) -> None:
    assert collector.http.post("/v1/traces", content=body, headers=PROTOBUF).status_code == 200


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningCollector]:
    running = RunningCollector(tmp_path_factory.mktemp("rollups") / "ledger.duckdb")
    bodies = [
        request_with(
            spans_for(batch), service=("checkout", "search-api")[batch % 2], start_ns=BASE_NS + batch * 7 * HOUR_NS
        ).SerializeToString()
        for batch in range(12)
    ]
    for body in bodies:
        post(running, body)
    post(running, bodies[3])  # a re-send adds nothing
    request = request_with(spans_for(99), start_ns=BASE_NS - 50 * HOUR_NS)  # late data for an earlier day
    request.resource_spans.append(request.resource_spans[0])  # the same spans twice in one request
    post(running, request.SerializeToString())
    yield running
    running.stop()


def test_the_rollup_equals_a_rebuild_from_the_raw_calls(loaded: RunningCollector) -> None:
    con = loaded.collector.store.reader()
    kept = con.execute("SELECT * FROM llm_calls_daily ORDER BY ALL").fetchall()
    rebuilt = con.execute(f"SELECT * FROM ({rollups.aggregate('llm_calls')}) ORDER BY ALL").fetchall()
    assert kept == rebuilt
    assert sum(row[10] for row in kept) == 12 * 8 + 8  # requests
    assert len({row[0] for row in kept}) == 5  # four days of batches and the late one


def finance(collector: RunningCollector, **params: Any) -> list[dict[str, str]]:
    response = collector.http.get("/api/v1/export.csv", params={"kind": "finance", **params})
    assert response.status_code == 200, response.text
    return list(csv.DictReader(io.StringIO(response.text)))


def finance_from_raw(collector: RunningCollector, where: str, params: list[Any]) -> list[dict[str, str]]:
    """The oracle: the finance roll-up straight from llm_calls, formatted as the CSV formats it."""
    rows = (
        collector.collector.store.reader()
        .execute(
            "SELECT strftime(start_time, '%Y-%m-%d'), team, service, coalesce(request_model, response_model), feature, "
            "count(*), coalesce(sum(input_tokens), 0), coalesce(sum(cached_input_tokens), 0), "
            "coalesce(sum(output_tokens), 0), coalesce(sum(reasoning_tokens), 0), "
            "coalesce(sum(cost_usd), 0)::DECIMAL(38,9), count(*) FILTER (WHERE cost_usd IS NULL) "
            f"FROM llm_calls {where} GROUP BY ALL ORDER BY ALL NULLS FIRST",
            params,
        )
        .fetchall()
    )
    names = ("period", "team", "service", "model", "feature", "requests", "input_tokens", "cached_input_tokens",
             "output_tokens", "reasoning_tokens", "cost_usd", "unpriced_requests")  # fmt: skip
    return [{name: neutralise(value) for name, value in zip(names, row, strict=True)} for row in rows]


WINDOWS = [
    ({}, "", []),
    (
        {"from": "2025-11-25", "to": "2025-11-27"},
        "WHERE start_time >= ? AND start_time < ?",
        ["2025-11-25", "2025-11-27"],
    ),
    (
        {"from": "2025-11-24T19:30:00Z", "to": "2025-11-26T09:00:00Z"},
        "WHERE start_time >= ? AND start_time < ?",
        ["2025-11-24 19:30:00+00", "2025-11-26 09:00:00+00"],
    ),
    (
        {"from": "2025-11-25T01:00:00Z", "to": "2025-11-25T20:00:00Z"},
        "WHERE start_time >= ? AND start_time < ?",
        ["2025-11-25 01:00:00+00", "2025-11-25 20:00:00+00"],
    ),
    ({"from": "2025-11-25T12:00:00+02:00"}, "WHERE start_time >= ?", ["2025-11-25 10:00:00+00"]),
    ({"to": "2025-11-26T06:00:00Z"}, "WHERE start_time < ?", ["2025-11-26 06:00:00+00"]),
    (
        {"team": "search", "model": "gpt-4.1"},
        "WHERE team = 'search' AND 'gpt-4.1' IN (request_model, response_model)",
        [],
    ),
    ({"status": "error", "from": "2025-11-25"}, "WHERE status = 'error' AND start_time >= ?", ["2025-11-25"]),
    ({"end_user": "user-1", "from": "2025-11-25"}, "WHERE end_user = 'user-1' AND start_time >= ?", ["2025-11-25"]),
]


@pytest.mark.parametrize(("params", "where", "bound"), WINDOWS, ids=[str(w[0]) for w in WINDOWS])
def test_finance_csv_equals_the_raw_roll_up(loaded: RunningCollector, params: dict, where: str, bound: list) -> None:
    expected = finance_from_raw(loaded, where, [*bound])
    assert expected, "the window should hold calls"
    got = finance(loaded, **params)
    key = lambda row: tuple(row[name] for name in ("period", "team", "service", "model", "feature"))  # noqa: E731
    assert sorted(got, key=key) == sorted(expected, key=key)


def test_a_new_database_backfills_the_rollup(tmp_path: Path, loaded: RunningCollector) -> None:
    """Migration 4 on a database that already holds calls builds the rollup from them."""
    import duckdb

    from collector.store.migrations import MIGRATIONS, Schema, migrate

    path = tmp_path / "old.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute("CREATE TABLE _migrations (id INTEGER PRIMARY KEY, name VARCHAR NOT NULL, "
                    "applied_at TIMESTAMPTZ NOT NULL DEFAULT current_timestamp)")  # fmt: skip
        for number, name, apply in MIGRATIONS[:3]:
            apply(Schema(con))
            con.execute("INSERT INTO _migrations (id, name) VALUES (?, ?)", [number, name])
        first_columns = ", ".join(name for name, _ in LLM_CALLS_COLUMNS_M001)
        raw = loaded.collector.store.reader().execute(f"SELECT {first_columns} FROM llm_calls").arrow()
        con.register("raw", raw)
        con.execute("INSERT INTO llm_calls SELECT * FROM raw")
        assert migrate(con) == ["m004_daily_rollup", "m005_prices", "m006_reconciliation", "m007_readiness",
                                "m008_notification_claims", "m009_billing_units"]  # fmt: skip
        assert con.execute("SELECT sum(requests) FROM llm_calls_daily").fetchone() == (104,)


@pytest.mark.parametrize("group_by", ["team", "model", "service", "feature"])
@pytest.mark.parametrize(("params", "where", "bound"), WINDOWS[:8], ids=[str(w[0]) for w in WINDOWS[:8]])
def test_breakdown_from_the_rollup_equals_the_raw_one(
    loaded: RunningCollector, monkeypatch: pytest.MonkeyPatch, group_by: str, params: dict, where: str, bound: list
) -> None:
    from collector.query import daily, reports
    from collector.query.filters import Filters

    filters = Filters.from_params({key: [value] for key, value in params.items()})
    con = loaded.collector.store.reader()
    with_rollup = reports.breakdown(con, filters, group_by, 50)
    monkeypatch.setattr(daily, "split", lambda _filters: None)
    raw_only = reports.breakdown(con, filters, group_by, 50)
    assert with_rollup == raw_only
    assert with_rollup["groups"]
