"""The daily rollup stays exact as data arrives (re-sends, a span twice in one batch, late data), and the
finance CSV built from it equals the same roll-up computed from the raw calls, for any window and filters."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from collector.query.exports import neutralise
from collector.store import rollups
from collector.store.schema import LLM_CALLS_COLUMNS_M001
from llmledger import semconv as sc
from tests.collector.test_reports import FINANCE_COLUMNS
from tests.collector_harness import RunningCollector
from tests.otlp_spans import BASE_NS, chat_attributes, request_with

PROTOBUF = {"content-type": "application/x-protobuf"}
HOUR_NS = 3_600 * 1_000_000_000
NANO = Decimal("0.000000001")
TEAMS = ("search", "support", None)
MODELS = ("gpt-4o-mini", "gpt-4.1", "mystery-model-x")


def units_for(batch: int, index: int) -> dict[str, Any]:
    """What some calls are billed on besides tokens, and who billed them (no provider: read as OpenAI's)."""
    return {
        1: {sc.GEN_AI_PROVIDER_NAME: sc.PROVIDER_AZURE, sc.USAGE_FILE_SEARCH_CALLS: 1 + batch % 2},
        2: {sc.GEN_AI_PROVIDER_NAME: None, sc.USAGE_WEB_SEARCH_CALLS: 2, sc.USAGE_CODE_INTERPRETER_SESSIONS: 1},
        # Seconds no binary fraction holds exactly: a DOUBLE sum can differ in its last bits with the order of adding.
        4: {sc.BILLING_UNIT: "audio_seconds", sc.USAGE_AUDIO_SECONDS: 12.7 + 0.1 * batch},
        6: {sc.BILLING_UNIT: "images", sc.USAGE_IMAGES: 1 + batch % 3, sc.USAGE_IMAGE_GENERATION_CALLS: 1},
        7: {sc.BILLING_UNIT: "characters", sc.USAGE_INPUT_CHARACTERS: 100 * batch + 7},
    }.get(index, {})


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
                **units_for(batch, index),
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
    # Every billing unit is summed, audio seconds exactly (each call's to the nanosecond, as a DECIMAL).
    units = ", ".join(f"sum({name})" for name in rollups.UNITS)
    (sums,) = con.execute(f"SELECT {units} FROM llm_calls_daily").fetchall()
    seconds = sum((Decimal(12.7 + 0.1 * batch).quantize(NANO) for batch in (*range(12), 99)), Decimal(0))
    assert dict(zip(rollups.UNITS, sums, strict=True)) == {
        "images": sum(1 + batch % 3 for batch in (*range(12), 99)),
        "input_characters": sum(100 * batch + 7 for batch in (*range(12), 99)),
        "audio_seconds": seconds,
        "web_search_calls": 2 * 13,
        "file_search_calls": sum(1 + batch % 2 for batch in (*range(12), 99)),
        "code_interpreter_sessions": 13,
        "image_generation_calls": 13,
    }
    assert {row[0] for row in con.execute("SELECT DISTINCT billing_unit FROM llm_calls_daily").fetchall()} == {
        "tokens", "audio_seconds", "images", "characters",
    }  # fmt: skip


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
            "coalesce(sum(cost_usd), 0)::DECIMAL(38,9), count(*) FILTER (WHERE cost_usd IS NULL), "
            "coalesce(provider, 'openai'), billing_unit, coalesce(sum(images), 0), coalesce(sum(input_characters), 0), "
            "coalesce(sum(audio_seconds::DECIMAL(38,9)), 0)::DECIMAL(38,9), coalesce(sum(web_search_calls), 0), "
            "coalesce(sum(file_search_calls), 0), coalesce(sum(code_interpreter_sessions), 0), "
            "coalesce(sum(image_generation_calls), 0) "
            f"FROM llm_calls {where} GROUP BY ALL ORDER BY ALL NULLS FIRST",
            params,
        )
        .fetchall()
    )
    return [{name: neutralise(value) for name, value in zip(FINANCE_COLUMNS, row, strict=True)} for row in rows]


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
    key = lambda row: tuple(row[name] for name in ("period", "team", "service", "model", "feature", "provider",  # noqa: E731
                                                   "billing_unit"))  # fmt: skip
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
        assert migrate(con)[:6] == ["m004_daily_rollup", "m005_prices", "m006_reconciliation", "m007_readiness",
                                    "m008_notification_claims", "m009_billing_units"]  # fmt: skip
        assert con.execute("SELECT sum(requests) FROM llm_calls_daily").fetchone() == (104,)


@pytest.mark.parametrize("group_by", ["team", "model", "service", "feature", "provider", "billing_unit"])
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
