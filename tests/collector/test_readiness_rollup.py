"""The readiness rollup (`readiness_daily`, migration 18) answers exactly what the raw calls answer: on generated
mixed traffic (services, environments, days, every fact the checklist reads, NULLs, rows on the window's edges),
each item's aggregates, its worst groups and example request ids equal the same queries over the raw calls, for
windows on whole days and windows cut mid-day; and the rollup stays equal to a rebuild as the collector ingests."""

from __future__ import annotations

import random
import re
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from collector.readiness import checklist, facts
from collector.readiness.items import ITEMS
from collector.readiness.model import Context, Scope
from collector.store import readiness_rollup, rollups
from collector.store.file import Store
from collector.store.schema import LLM_CALLS_COLUMNS
from llmledger import semconv as sc
from tests.collector_harness import RunningCollector
from tests.otlp_spans import BASE_NS, chat_attributes, request_with

PROTOBUF = {"content-type": "application/x-protobuf"}
FIRST_DAY = datetime(2025, 11, 20, tzinfo=UTC)
DAYS = 6
SERVICES = ("checkout", "search", "batcher")
ENVIRONMENTS = ("production", "prod", "staging", "dev", None)
FEATURES = ("answers", "nightly", "triage", None)
MODELS = ("gpt-4o-mini-2024-07-18", "gpt-4o", "ft:gpt-4o:acme", "text-embedding-3-small", None)
CONTEXT = Context(batch_features=("nightly",))


def maybe(rng: random.Random, *values: Any) -> Any:
    return rng.choice((*values, None))


def generated_call(rng: random.Random, index: int, start: datetime) -> dict[str, Any]:
    """One call with every fact the checklist reads drawn at random (NULL included), around each predicate's bound."""
    row: dict[str, Any] = dict.fromkeys(name for name, _ in LLM_CALLS_COLUMNS)
    error = rng.random() < 0.2
    row.update(
        trace_id=f"{index:032x}", span_id=f"{index:016x}", start_time=start, service=rng.choice(SERVICES),
        environment=rng.choice(ENVIRONMENTS), feature=rng.choice(FEATURES), request_model=rng.choice(MODELS),
        response_model=maybe(rng, "gpt-4o-2024-08-06"), operation=rng.choice(("chat", "responses", "embeddings")),
        status="error" if error else "ok", source_dialect=rng.choice(("llmledger", "llmledger", "otel_genai")),
        http_status=rng.choice((429, 500, 503, 400, None)) if error else maybe(rng, 200),
        error_type=rng.choice(("RateLimitError", "InternalServerError", "APIConnectionError", "Weird")) if error
        else None,
        duration_ms=rng.uniform(50, 9000), ttft_ms=maybe(rng, rng.uniform(10, 900)), attempts=maybe(rng, 0, 1, 2, 5),
        input_tokens=maybe(rng, rng.randint(0, 1023), 1024, rng.randint(1025, 9000)),
        cached_input_tokens=maybe(rng, 0, rng.randint(1, 900)), output_tokens=maybe(rng, rng.randint(0, 500)),
        cost_usd=maybe(rng, Decimal(rng.randint(0, 10**6)) / 10**9), cost_source=maybe(rng, "collector", "self_hosted"),
        stream=maybe(rng, True, False), batch=maybe(rng, True, False), usage_estimated=maybe(rng, True, False),
        request_id=maybe(rng, f"req_{index}"), end_user=maybe(rng, f"user-{index % 5}"),
        finish_reason=maybe(rng, "stop", "length", "stop,length", "tool_calls"), max_tokens=maybe(rng, 256),
        client_timeout_s=maybe(rng, 30.0, 120.0, 600.0), client_max_retries=maybe(rng, 0, 2, 5),
        key_kind=maybe(rng, "project", "service_account", "user", "admin"), user_set=maybe(rng, True, False),
        content_captured=maybe(rng, True, False), content_redacted=maybe(rng, True, False),
        guard_action=maybe(rng, "blocked", "circuit_open", "rerouted", "warned", "downgraded"),
        guard_features=maybe(rng, "breaker", "breaker,budgets", "budgets"), guard_budget_id=maybe(rng, 7, 9),
        response_format=maybe(rng, "json_schema", "json_object", "text"), signals_version=maybe(rng, "1", "2"),
        output_parse_failed=maybe(rng, True, False), output_json_truncated=maybe(rng, True, False),
        output_refusal=maybe(rng, True, False), request_moderated=maybe(rng, True, False),
        input_user_delimited=maybe(rng, True, False), system_message=maybe(rng, True, False),
        tool_choice_set=maybe(rng, True, False), tools=maybe(rng, 0, 1, 3), tools_described=maybe(rng, 0, 1, 3),
        tool_results_unmatched=maybe(rng, 0, 1, 2), tool_calls_unanswered=maybe(rng, 0, 2),
        client_reused=maybe(rng, True, False), input_special_tokens=maybe(rng, 0, 1, 4),
        input_injection_phrases=maybe(rng, 0, 1, 3), output_pii_matches=maybe(rng, 0, 1, 6),
        input_context_used_pct=maybe(rng, rng.uniform(0, 79.9), 80.0, rng.uniform(80.1, 100)),
    )  # fmt: skip
    return row


def generated_calls(count: int) -> list[dict[str, Any]]:
    """Calls over DAYS days at distinct instants, plus calls exactly on midnights and just before them."""
    rng = random.Random(23)
    span = DAYS * 86_400_000_000
    starts = {FIRST_DAY + timedelta(microseconds=rng.randrange(span)) for _ in range(count)}
    for day in range(DAYS + 1):
        midnight = FIRST_DAY + timedelta(days=day)
        starts |= {midnight, midnight - timedelta(microseconds=1), midnight + timedelta(hours=9, microseconds=7)}
    return [generated_call(rng, index, start) for index, start in enumerate(sorted(starts))]


@pytest.fixture(scope="module")
def mixed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    store = Store(tmp_path_factory.mktemp("readiness_rollup") / "ledger.duckdb")
    calls = generated_calls(4000)
    random.Random(5).shuffle(calls)  # late data: batches reach days already rolled up
    for first in range(0, len(calls), 250):
        store.insert(calls[first : first + 250])
    yield store
    store.close()


def rollup_rows(con: Any) -> list[tuple[Any, ...]]:
    return con.execute(f"SELECT * FROM ({readiness_rollup.merged('readiness_daily')}) ORDER BY ALL").fetchall()


def rebuilt_rows(con: Any) -> list[tuple[Any, ...]]:
    rebuilt = readiness_rollup.aggregate("llm_calls")
    return con.execute(f"SELECT * FROM ({readiness_rollup.merged(f'({rebuilt})')}) ORDER BY ALL").fetchall()


def test_ingest_keeps_the_rollup_equal_to_a_rebuild(mixed: Store) -> None:
    con = mixed.reader()
    try:
        kept = rollup_rows(con)
        assert kept == rebuilt_rows(con)
        (rows,) = con.execute("SELECT count(*) FROM readiness_daily").fetchone()
        assert rows == len(kept)  # one row per key on a file: ingest merges into it
        (calls,) = con.execute("SELECT sum(calls) FROM readiness_daily").fetchone()
        assert calls == con.execute("SELECT count(*) FROM llm_calls").fetchone()[0] > 4000
    finally:
        con.close()


# --- the raw-row facts, as the checklist computed them before the rollup -----------------------------------------


def raw_where(scope: Scope, calls: str) -> tuple[str, dict[str, Any]]:
    where = "service = $service AND start_time >= $start AND start_time < $end"
    params = {"service": scope.service, "start": scope.start, "end": scope.end}
    if calls == "production":
        where += " AND list_contains($environments, environment)"
        params["environments"] = scope.environments
    return where, params


def bound(sql: str, params: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in params.items() if re.search(rf"\${name}\b", sql)}


def raw_aggregate(con: Any, scope: Scope, calls: str, by_day: bool) -> dict[date | None, dict[str, Any]]:
    names, sqls = ["calls"], ["count(*)"]
    for item in ITEMS:
        if item.calls == calls:
            for name, sql in item.aggregates.items():
                names.append(f"{item.id}:{name}")
                sqls.append(sql)
    where, params = raw_where(scope, calls)
    params.update(production=list(scope.production_environments), batch_features=list(CONTEXT.batch_features))
    day = f"{rollups.UTC_DAY} AS day, " if by_day else "NULL AS day, "
    sql = f"SELECT {day}{', '.join(sqls)} FROM llm_calls WHERE {where}{' GROUP BY day' if by_day else ''}"
    rows = con.execute(sql, bound(sql, params)).fetchall()
    return {row[0]: dict(zip(names, row[1:], strict=True)) for row in rows}


def raw_details(con: Any, scope: Scope, item: Any) -> dict[str, Any]:
    key, group_sql = item.group
    where, params = raw_where(scope, item.calls)
    params.update(production=list(scope.production_environments), batch_features=list(CONTEXT.batch_features))
    sql = (
        f"SELECT {group_sql} AS grp, count(*) AS n, arg_max(request_id, start_time, 3) FILTER "
        f"(WHERE request_id IS NOT NULL) FROM llm_calls WHERE {where} "
        f"AND ({item.bad}) GROUP BY grp ORDER BY n DESC, grp NULLS LAST LIMIT 3"
    )
    rows = con.execute(sql, bound(sql, params)).fetchall()
    examples = [request_id for _, _, ids in rows for request_id in (ids or [])][:3]
    return {"worst": [{key: group, "calls": n} for group, n, _ in rows], "example_request_ids": examples}


def comparable(values: dict[str, Any]) -> dict[str, Any]:
    """Lists of DISTINCT values come in no set order."""
    return {name: sorted(value, key=str) if isinstance(value, list) else value for name, value in values.items()}


RAW_ONLY = {f"{item.id}:{name}" for item in ITEMS for name, sql in item.aggregates.items()
            if facts.rollup_sql(sql) is None}  # fmt: skip


def scopes() -> list[Scope]:
    noon = FIRST_DAY + timedelta(days=2, hours=12, minutes=30, seconds=7)
    windows = [
        (FIRST_DAY, FIRST_DAY + timedelta(days=DAYS)),  # whole days only
        (FIRST_DAY - timedelta(days=3), FIRST_DAY + timedelta(days=DAYS + 3)),  # beyond the data
        (noon - timedelta(days=1), noon),  # 24 h cut mid-day at both ends
        (noon - timedelta(days=3, hours=5), noon + timedelta(hours=1)),
        (noon, noon + timedelta(hours=3)),  # inside one day
        (FIRST_DAY + timedelta(days=1), FIRST_DAY + timedelta(days=3, hours=9, microseconds=7)),  # on a call's instant
        (FIRST_DAY + timedelta(days=1, microseconds=-1), FIRST_DAY + timedelta(days=4)),
        # Most of each edge day inside: the day's rollup rows less its raw calls outside the window.
        (FIRST_DAY + timedelta(days=1, hours=2), FIRST_DAY + timedelta(days=3, hours=21, minutes=5)),
        (FIRST_DAY + timedelta(days=2, hours=1), FIRST_DAY + timedelta(days=2, hours=23)),  # inside one day
        (FIRST_DAY + timedelta(days=2, hours=1), FIRST_DAY + timedelta(days=3, hours=1)),  # 24 h
    ]
    return [
        Scope(service, start, end, environment)
        for start, end in windows
        for service in SERVICES
        for environment in (None, "staging")
    ] + [Scope("checkout", *windows[2], None, ("prod", "dev"))]


@pytest.mark.parametrize("scope", scopes(), ids=lambda s: f"{s.service}-{s.environment}-{s.start:%dT%H%M}")
def test_rollup_facts_equal_the_raw_facts(mixed: Store, scope: Scope) -> None:
    con = mixed.reader()
    try:
        with facts.scoped(con, scope) as source:
            for calls in ("production", "all"):
                expected = raw_aggregate(con, scope, calls, False)[None]
                assert comparable(facts.aggregate(con, scope, CONTEXT, calls, False, source)[None]) == comparable(
                    expected
                )
                assert comparable(facts.aggregate(con, scope, CONTEXT, calls, False)[None]) == comparable(expected)
                # Per day (the history): everything but the percentiles, which no scored item reads.
                by_day = facts.aggregate(con, scope, CONTEXT, calls, True, source)
                raw_by_day = raw_aggregate(con, scope, calls, True)
                assert set(by_day) == set(raw_by_day)
                for day, values in by_day.items():
                    assert all(values[name] is None for name in RAW_ONLY if name in values)
                    wanted = {name: value for name, value in raw_by_day[day].items() if name not in RAW_ONLY}
                    assert comparable({n: v for n, v in values.items() if n not in RAW_ONLY}) == comparable(wanted)
            for item in (item for item in ITEMS if item.bad is not None):
                assert facts.details(con, scope, CONTEXT, item, source) == raw_details(con, scope, item), item.id
    finally:
        con.close()


def test_the_checks_see_failing_items_with_evidence(mixed: Store) -> None:
    """The generated traffic fails most items, so the evidence compared above is not empty."""
    con = mixed.reader()
    try:
        scope = Scope("checkout", FIRST_DAY, FIRST_DAY + timedelta(days=DAYS))
        card = checklist.scorecard(con, scope, CONTEXT)
        evidence = [entry["evidence"] for c in card["categories"] for entry in c["items"] if entry["status"] == "fail"]
        assert sum(bool(e.get("example_request_ids")) for e in evidence) >= 10
        with facts.scoped(con, scope) as source:
            values = facts.aggregate(con, scope, CONTEXT, "production", False, source)[None]
        assert values["sec.key_scope:kinds"]
        assert values["mon.latency_alert:p95"] is not None
    finally:
        con.close()


# --- through the collector --------------------------------------------------------------------------------------


def test_spans_through_the_collector_update_the_rollup(tmp_path: Path) -> None:
    running = RunningCollector(tmp_path / "ledger.duckdb")
    try:
        hour = 3_600 * 10**9
        spans = [
            chat_attributes(**{sc.REQUEST_ID: f"req_{index}", sc.FEATURE: ("a", "b", None)[index % 3],
                               sc.CLIENT_MAX_RETRIES: index % 2, sc.GEN_AI_USAGE_INPUT_TOKENS: 1000 + 10 * index})
            for index in range(6)
        ]  # fmt: skip
        for batch in range(4):
            body = request_with(spans, service="svc", start_ns=BASE_NS + batch * 11 * hour).SerializeToString()
            assert running.http.post("/v1/traces", content=body, headers=PROTOBUF).status_code == 200
        assert running.http.post("/v1/traces", content=body, headers=PROTOBUF).status_code == 200  # a re-send
        con = running.collector.store.reader()
        try:
            assert rollup_rows(con) == rebuilt_rows(con)
            assert con.execute("SELECT sum(calls), sum(input_tokens_sum) FROM readiness_daily").fetchone() == (
                24, 4 * sum(1000 + 10 * index for index in range(6)),
            )  # fmt: skip
        finally:
            con.close()
    finally:
        running.stop()


def test_a_filtered_sum_is_written_as_a_case_over_the_rollup_rows() -> None:
    rolled = facts.rollup_sql(
        "count(*) FILTER (WHERE status = 'error' AND (http_status = 429 OR error_type IN ('a', 'b'))) "
        "/ nullif(count(*), 0), sum(input_tokens) FILTER (WHERE stream), list(DISTINCT x) FILTER (WHERE x > 1)"
    )
    assert rolled == (
        "coalesce(sum(CASE WHEN status = 'error' AND (http_status = 429 OR error_type IN ('a', 'b')) "
        "THEN calls END), 0) "
        "/ nullif(coalesce(sum(calls), 0), 0), sum(CASE WHEN stream THEN input_tokens_sum END), "
        "list(DISTINCT x) FILTER (WHERE x > 1)"
    )
