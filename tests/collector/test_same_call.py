"""One row per call: reports of the same call by several instrumentations, merged in the store's write transaction
(collector/store/same_call.py). Real normalizer, price book and DuckDB file; the rollup checked against the raw
calls after every step."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from collector.ingest.normalize import normalize
from collector.money.overrides import PriceOverrides
from collector.money.price_book import PriceBook
from collector.money.reprice import reprice
from collector.store import hourly, latency_hourly, readiness_rollup, rollups, same_call
from collector.store.backup import backup, restore
from collector.store.file import Store
from llmledger import semconv as sc
from tests.otlp_spans import BASE_NS, chat_attributes, request_with

SECOND_NS = 1_000_000_000


def ours(response_id: str | None, **overrides: Any) -> dict[str, Any]:
    """Our wrapper's report: request id, cached tokens, team label."""
    return chat_attributes(**{sc.GEN_AI_RESPONSE_ID: response_id, sc.TEAM: "search", **overrides})


def theirs(response_id: str | None, **overrides: Any) -> dict[str, Any]:
    """openai-v2's report of the same call: no request id, no cached tokens (so it costs more), no labels."""
    attrs = {
        sc.GEN_AI_OPERATION_NAME: "chat",
        sc.GEN_AI_PROVIDER_NAME: "openai",
        sc.GEN_AI_REQUEST_MODEL: "gpt-4o-mini",
        sc.GEN_AI_RESPONSE_MODEL: "gpt-4o-mini-2024-07-18",
        sc.GEN_AI_RESPONSE_ID: response_id,
        sc.GEN_AI_USAGE_INPUT_TOKENS: 1000,
        sc.GEN_AI_USAGE_OUTPUT_TOKENS: 100,
        **overrides,
    }
    return {key: value for key, value in attrs.items() if value is not None}


def openllmetry(response_id: str) -> dict[str, Any]:
    return {**theirs(response_id), sc.LLM_REQUEST_TYPE: "chat", sc.LLM_USAGE_TOTAL_TOKENS: 1100}


def rows(*spans: dict[str, Any], start_ns: int = BASE_NS, service: str = "checkout") -> list[dict[str, Any]]:
    """Priced rows of one span per attribute dict, all starting at `start_ns` (as reports of one call do)."""
    batch = []
    for attrs in spans:
        batch += normalize(request_with([attrs], service=service, start_ns=start_ns)).rows
    PriceBook().price_rows(batch)
    return batch


@pytest.fixture
def store(tmp_path: Path) -> Store:
    opened = Store(tmp_path / "ledger.duckdb")
    yield opened
    opened.close()


def stored(store: Store) -> list[dict[str, Any]]:
    con = store.reader()
    return con.execute("SELECT * FROM llm_calls ORDER BY start_time, source_dialect").to_arrow_table().to_pylist()


ROLLUPS = {
    "llm_calls_daily": rollups,
    "llm_calls_hourly": hourly,
    "readiness_daily": readiness_rollup,
    "llm_calls_latency_hourly": latency_hourly,
}


def assert_rollup_exact(store: Store) -> None:
    """Every rollup of the raw calls equals one built afresh from them: a replaced report's row was taken out."""
    con = store.reader()
    for table, rollup in ROLLUPS.items():
        kept = con.execute(f"SELECT * FROM {table} ORDER BY ALL").fetchall()
        rebuilt = con.execute(f"SELECT * FROM ({rollup.aggregate('llm_calls')}) ORDER BY ALL").fetchall()
        assert kept == rebuilt, table


def test_two_reports_in_one_batch_are_one_row_ours_kept(store: Store) -> None:
    mine, other = rows(ours("chatcmpl-a"), theirs("chatcmpl-a"))
    inserted = store.insert([other, mine])
    assert inserted.new_keys == {(mine["trace_id"], mine["span_id"])}
    assert inserted.merged == {(other["trace_id"], other["span_id"]): "otel_genai"}
    assert inserted.merged_dialects == ["otel_genai"]
    (row,) = stored(store)
    assert (row["span_id"], row["source_dialect"], row["team"]) == (mine["span_id"], "llmledger", "search")
    assert row["cost_usd"] == mine["cost_usd"] < other["cost_usd"]  # ours counts the cached tokens
    assert row["also_reported_by"] == "otel_genai"
    assert row["also_reported_spans"] == f"{other['trace_id']}/{other['span_id']}"
    assert row["response_id"] == "chatcmpl-a"
    assert_rollup_exact(store)


def test_ours_arriving_after_the_other_was_committed_replaces_it_and_the_rollup_follows(store: Store) -> None:
    mine, other, lt = rows(ours("chatcmpl-a"), theirs("chatcmpl-a"), openllmetry("chatcmpl-a"))
    store.insert([other])
    assert [row["source_dialect"] for row in stored(store)] == ["otel_genai"]
    assert_rollup_exact(store)

    inserted = store.insert([mine])
    assert inserted.new_keys == {(mine["trace_id"], mine["span_id"])}
    assert inserted.merged_dialects == ["otel_genai"]  # the replaced row, counted now
    (row,) = stored(store)
    assert (row["source_dialect"], row["also_reported_by"], row["cost_usd"]) == (
        "llmledger",
        "otel_genai",
        mine["cost_usd"],
    )
    assert_rollup_exact(store)  # the NULL-team key left the rollup; the "search" one has the call
    con = store.reader()
    assert con.execute("SELECT team, requests FROM llm_calls_daily").fetchall() == [("search", 1)]

    inserted = store.insert([lt])  # a third instrumentation, later still: recorded on our row
    assert (inserted.new_keys, inserted.merged_dialects) == (set(), ["openllmetry"])
    (row,) = stored(store)
    assert row["also_reported_by"] == "openllmetry,otel_genai"
    assert_rollup_exact(store)


def test_re_sends_of_either_report_change_nothing(store: Store) -> None:
    mine, other = rows(ours("chatcmpl-a"), theirs("chatcmpl-a"))
    store.insert([other])
    store.insert([mine])
    before = stored(store)
    for resend in ([other], [mine], [mine, other], [other, mine]):
        inserted = store.insert([dict(row) for row in resend])
        assert (inserted.new_keys, inserted.merged, inserted.merged_dialects) == (set(), {}, [])
        assert stored(store) == before
        assert_rollup_exact(store)


def test_among_other_instrumentations_the_richer_report_wins_whatever_the_order(tmp_path: Path) -> None:
    poor, rich = rows(theirs("chatcmpl-x", **{sc.GEN_AI_RESPONSE_MODEL: None}), openllmetry("chatcmpl-x"))
    for number, arrivals in enumerate(([[poor, rich]], [[rich, poor]], [[poor], [rich]], [[rich], [poor]])):
        store = Store(tmp_path / f"{number}.duckdb")
        try:
            for batch in arrivals:
                store.insert([dict(row) for row in batch])
            (row,) = stored(store)
            assert (row["span_id"], row["source_dialect"], row["also_reported_by"]) == (
                rich["span_id"],
                "openllmetry",
                "otel_genai",
            )
            assert_rollup_exact(store)
        finally:
            store.close()


def test_two_calls_with_the_same_prompt_but_different_response_ids_stay_two_rows(store: Store) -> None:
    first = rows(ours("chatcmpl-1"), theirs("chatcmpl-1"))
    second = rows(ours("chatcmpl-2"), theirs("chatcmpl-2"))
    store.insert([*first, *second])
    kept = stored(store)
    assert sorted((row["response_id"], row["source_dialect"], row["also_reported_by"]) for row in kept) == [
        ("chatcmpl-1", "llmledger", "otel_genai"),
        ("chatcmpl-2", "llmledger", "otel_genai"),
    ]
    assert_rollup_exact(store)


def test_calls_without_ids_are_never_merged(store: Store) -> None:
    alike = rows(theirs(None), theirs(None), ours(None, **{sc.REQUEST_ID: None}), ours(None, **{sc.REQUEST_ID: None}))
    inserted = store.insert(alike)
    assert (len(inserted.new_keys), inserted.merged_dialects) == (4, [])
    assert len(stored(store)) == 4


def test_the_request_id_tells_reports_apart_when_a_response_id_is_missing(store: Store) -> None:
    (failed,) = rows(ours(None, **{sc.REQUEST_ID: "req_shared", sc.ERROR_TYPE: "RateLimitError"}))
    (forwarded,) = rows(ours(None, **{sc.REQUEST_ID: "req_shared"}))  # e.g. a gateway forwarding x-request-id
    store.insert([failed])
    store.insert([forwarded])
    assert len(stored(store)) == 1
    # Both with response ids: those decide, not a shared request id (a Realtime session's responses share one).
    session = rows(ours("resp_1", **{sc.REQUEST_ID: "req_session"}), ours("resp_2", **{sc.REQUEST_ID: "req_session"}))
    store.insert(session)
    assert len(stored(store)) == 3


@pytest.mark.parametrize("order", list(itertools.permutations(range(3))))
def test_a_request_id_shared_by_two_responses_never_chains_them_into_one_call(
    tmp_path: Path, order: tuple[int, ...]
) -> None:
    """A and B are two responses of one Realtime session (one request id); C lacks a response id. C matches both,
    so it joins neither: whatever the order, both calls keep their rows and the rollup stays exact."""
    reports = rows(ours("resp_a", **{sc.REQUEST_ID: "req_s"}), ours("resp_b", **{sc.REQUEST_ID: "req_s"}),
                   theirs(None, **{sc.REQUEST_ID: "req_s"}))  # fmt: skip
    in_one = Store(tmp_path / "one.duckdb")
    in_one.insert([reports[index] for index in order])
    one_by_one = Store(tmp_path / "each.duckdb")
    for index in order:
        one_by_one.insert([reports[index]])
    for each in (in_one, one_by_one):
        responses = {row["response_id"] for row in stored(each)}
        assert {"resp_a", "resp_b"} <= responses  # neither call lost
        assert len(stored(each)) in (2, 3)  # C alone, or C merged into the one response stored before it
        assert_rollup_exact(each)
        each.close()


def test_another_service_or_a_start_beyond_the_window_is_another_call(store: Store) -> None:
    window_ns = int(same_call.WINDOW.total_seconds()) * SECOND_NS
    store.insert(rows(ours("chatcmpl-a")))
    store.insert(rows(theirs("chatcmpl-a"), service="billing"))
    store.insert(rows(theirs("chatcmpl-a"), start_ns=BASE_NS - window_ns - SECOND_NS))
    assert len(stored(store)) == 3
    store.insert(rows(theirs("chatcmpl-a"), start_ns=BASE_NS + window_ns))  # at the window's edge: the same call
    assert len(stored(store)) == 3
    assert_rollup_exact(store)


def test_merging_off_stores_every_report(tmp_path: Path) -> None:
    store = Store(tmp_path / "off.duckdb", merge_reports=False)
    try:
        store.insert(rows(ours("chatcmpl-a"), theirs("chatcmpl-a")))
        assert len(stored(store)) == 2
    finally:
        store.close()


def test_re_pricing_and_a_backup_keep_one_row_and_an_exact_rollup(store: Store, tmp_path: Path) -> None:
    mine, other = rows(ours("chatcmpl-a"), theirs("chatcmpl-a"))
    store.insert([other])
    store.insert([mine])
    (tmp_path / "prices.toml").write_text('[[price]]\nmodel = "gpt-4o-mini"\nfrom = 2025-01-01\ndiscount_pct = 50\n')
    book = PriceBook(PriceOverrides.load(tmp_path / "prices.toml"))
    start = datetime.fromtimestamp(BASE_NS / SECOND_NS).astimezone()
    result = reprice(store, book, start - timedelta(days=1), start + timedelta(days=1), dry_run=False, now=start)
    assert result.rows_seen == 1
    (row,) = stored(store)
    assert Decimal(row["cost_usd"]) == Decimal(mine["cost_usd"]) / 2
    assert row["also_reported_by"] == "otel_genai"
    assert_rollup_exact(store)

    backup(store, tmp_path / "backup")
    restore(tmp_path / "restored.duckdb", tmp_path / "backup")
    restored = Store(tmp_path / "restored.duckdb")
    try:
        assert stored(restored) == stored(store)
        assert_rollup_exact(restored)
        for resend in ([other], [mine]):  # re-sent after the restore: still one row
            assert restored.insert([dict(r) for r in resend]).new_keys == set()
        assert stored(restored) == stored(store)
        assert_rollup_exact(restored)
    finally:
        restored.close()


def test_a_batch_mixing_stored_and_new_calls_inserts_only_the_new(store: Store) -> None:
    # The first attempt is a plain INSERT, which the unique key refuses for the whole batch: the second one
    # (ON CONFLICT DO NOTHING) must store the new calls once, and the rollup count each call once.
    first, second, third = (rows(ours(f"resp_{n}", **{sc.REQUEST_ID: f"req_{n}"}))[0] for n in range(3))
    assert store.insert([dict(first), dict(second)]).new_keys == {key(first), key(second)}
    inserted = store.insert([dict(second), dict(third), dict(first)])
    assert inserted.new_keys == {key(third)}
    assert inserted.merged == {}
    assert sorted(row["response_id"] for row in stored(store)) == ["resp_0", "resp_1", "resp_2"]
    assert_rollup_exact(store)
    assert store.reader().execute("SELECT sum(requests) FROM llm_calls_daily").fetchone() == (3,)


def key(row: dict[str, Any]) -> tuple[str, str]:
    return row["trace_id"], row["span_id"]
