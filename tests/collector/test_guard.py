"""The guard's collector side: enforced budget rules, `GET /v1/guard/budgets`, the guard_* columns from spans, and
the query API's guard_action filter and groups (llmledger/guard/ is the app side)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest

from collector.alerts.readings import measure
from collector.alerts.rules import Enforce, RuleError, parse_rule
from collector.api.auth import Tokens
from collector.ingest.normalize import normalize
from collector.ingest.validate import keep_storable
from collector.store.backup import restore
from collector.store.file import Store
from collector.store.migrations import MIGRATIONS, MIGRATIONS_TABLE, Schema
from llmledger import semconv as sc
from tests.collector_harness import RunningCollector
from tests.otlp_spans import alike, chat_attributes, request_with

from .test_lake import Lake, lake  # noqa: F401 - the lake fixture

ROOT = Path(__file__).resolve().parents[2]
PROTOBUF = {"content-type": "application/x-protobuf"}
USER = "0123456789abcdef0123456789abcdef"  # an end user as stored: the wrapper's salted hash
BUDGET = {"name": "search daily", "metric": "cost", "window": "day", "op": ">", "threshold": 5,
          "filters": {"team": ["search"]}, "enforce": {"action": "block"}}  # fmt: skip
BUDGET_KEYS = {"id", "name", "window", "window_start", "filters", "op", "limit_usd", "spent_usd", "action",
               "downgrade_to"}  # fmt: skip
TOKENS = Tokens(ingest="ingest-g", read="read-g", admin="admin-g")


def midnight(now: datetime | None = None) -> datetime:
    now = now or datetime.now(UTC)
    return datetime(now.year, now.month, now.day, tzinfo=UTC)


def post(collector: RunningCollector, spans: list[dict[str, Any]], at: datetime, **kwargs: Any) -> None:
    body = request_with(spans, start_ns=int(at.timestamp() * 1e9), **kwargs).SerializeToString()
    answer = collector.http.post("/v1/traces", content=body, headers=PROTOBUF)
    assert answer.status_code == 200, answer.text


@pytest.fixture
def collector(tmp_path: Path) -> Iterator[RunningCollector]:
    running = RunningCollector(tmp_path / "guard.duckdb", "--alert-interval", "3600")
    yield running
    running.stop()


# --- rules ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        ({"metric": "error_rate", "threshold": 0.1}, "enforce", "only a cost rule"),
        ({"metric": "cost_forecast_month", "window": "month"}, "enforce", "only a cost rule"),
        ({"window": "1h"}, "enforce", "day or month"),
        ({"window": "24h"}, "enforce", "day or month"),
        ({"op": "<"}, "enforce", "'>' or '>='"),
        ({"threshold": -1}, "enforce", "can't be negative"),
        ({"enforce": {"action": "explode"}}, "enforce", "not one of warn, block, downgrade"),
        ({"enforce": {"action": "downgrade"}}, "enforce", "needs downgrade_to"),
        ({"enforce": {"action": "downgrade", "downgrade_to": "gpt-17-imaginary"}}, "enforce",
         "unknown model for downgrade"),
        ({"enforce": {"action": "downgrade", "downgrade_to": 4}}, "enforce", "needs downgrade_to"),
        ({"enforce": {"action": "block", "downgrade_to": "gpt-4o-mini"}}, "enforce", "only for action 'downgrade'"),
        ({"enforce": {"action": "block", "when": "now"}}, "enforce", "not an enforce field"),
        ({"enforce": "block"}, "enforce", "must be an object"),
        ({"filters": {"end_user": ["alice@example.com"]}}, "filters", "32 hex characters"),
        ({"filters": {"end_user": [USER.upper()]}}, "filters", "32 hex characters"),
        ({"filters": {"guard_action": ["blocked"]}}, "filters", "is not one of"),
        ({"filters": {"team": ["x" * 501]}}, "filters", "at most"),
        ({"filters": {"team": ["t"] * 1001}}, "filters", "at most"),
    ],
)  # fmt: skip
def test_what_can_be_enforced(change: dict[str, Any], field: str, words: str) -> None:
    with pytest.raises(RuleError) as caught:
        parse_rule({**BUDGET, **change})
    assert caught.value.field == field
    assert words in caught.value.message


def test_enforced_budgets_parse() -> None:
    assert parse_rule(BUDGET).enforce == Enforce("block")
    assert parse_rule({**BUDGET, "enforce": None}).enforce is None
    assert parse_rule({k: v for k, v in BUDGET.items() if k != "enforce"}).enforce is None
    monthly = parse_rule({**BUDGET, "window": "month", "op": ">=", "filters": {"end_user": [USER], "model": "gpt-4o"},
                          "enforce": {"action": "downgrade", "downgrade_to": " gpt-4o-mini "}})  # fmt: skip
    assert monthly.enforce == Enforce("downgrade", "gpt-4o-mini")
    assert monthly.filters == {"end_user": [USER], "model": ["gpt-4o"]}
    assert parse_rule({**BUDGET, "enforce": {"action": "warn", "downgrade_to": None}}).enforce == Enforce("warn")
    # end_user may filter any rule: the evaluator reads it like every other label.
    assert parse_rule({**BUDGET, "metric": "errors", "enforce": None, "filters": {"end_user": USER}}).filters == {
        "end_user": [USER]
    }


def test_enforce_round_trips_through_the_api(collector: RunningCollector) -> None:
    created = collector.http.post("/api/v1/alert-rules", json=BUDGET)
    assert created.status_code == 201, created.text
    rule_id = created.json()["id"]
    shown = collector.get(f"/api/v1/alert-rules/{rule_id}")
    assert shown["enforce"] == {"action": "block", "downgrade_to": None}
    assert collector.get("/api/v1/alert-rules")["rules"][0]["enforce"] == shown["enforce"]

    downgrade = {**BUDGET, "enforce": {"action": "downgrade", "downgrade_to": "gpt-4o-mini"}}
    assert collector.http.put(f"/api/v1/alert-rules/{rule_id}", json=downgrade).status_code == 200
    assert collector.get(f"/api/v1/alert-rules/{rule_id}")["enforce"] == {
        "action": "downgrade", "downgrade_to": "gpt-4o-mini"
    }  # fmt: skip

    # A refused change leaves the stored rule as it was; the 422 names enforce and why.
    refused = collector.http.put(f"/api/v1/alert-rules/{rule_id}", json={**downgrade, "window": "1h"})
    assert refused.status_code == 422
    assert refused.json()["field"] == "enforce"
    assert collector.get(f"/api/v1/alert-rules/{rule_id}")["window"] == "day"

    assert collector.http.put(f"/api/v1/alert-rules/{rule_id}", json={**BUDGET, "enforce": None}).status_code == 200
    assert collector.get(f"/api/v1/alert-rules/{rule_id}")["enforce"] is None
    # The preview checks the rule like a save does.
    preview = collector.http.post("/api/v1/alert-rules/preview", json={**BUDGET, "metric": "requests"})
    assert (preview.status_code, preview.json()["field"]) == (422, "enforce")


@pytest.mark.parametrize(
    "body",
    [
        {**BUDGET, "filters": {"colour": ["red"]}},
        {**BUDGET, "filters": {"team": []}},
        {**BUDGET, "filters": {"team": [None]}},
        {**BUDGET, "filters": {"end_user": ["bob"]}},
        {**BUDGET, "filters": {"service": "x'; DROP TABLE alert_rules; --", "end_user": ["' OR 1=1 --"]}},
        {**BUDGET, "filters": ["team", "search"]},
        {**BUDGET, "enforce": {"action": "downgrade", "downgrade_to": "gpt-4o-mini'; --"}},
        {**BUDGET, "enforce": {"action": ["block"]}},
        {**BUDGET, "enforce": []},
    ],
)
def test_an_enforced_rule_with_bad_filters_or_enforce_is_never_stored(
    collector: RunningCollector, body: dict[str, Any]
) -> None:
    answer = collector.http.post("/api/v1/alert-rules", json=body)
    assert answer.status_code == 422, answer.text
    assert answer.json()["field"] in ("filters", "enforce")
    assert collector.get("/api/v1/alert-rules")["rules"] == []
    assert collector.get("/v1/guard/budgets")["budgets"] == []


# --- GET /v1/guard/budgets ------------------------------------------------------------------------------------


def summary_cost(collector: RunningCollector, start: str, **filters: Any) -> str:
    return collector.get("/api/v1/summary", **{"from": start, **filters})["cost_usd"]


def test_budgets_report_exact_spend_since_the_window_began(collector: RunningCollector) -> None:
    today = midnight()
    search = {sc.TEAM: "search"}
    first = today + timedelta(seconds=1)
    post(collector, [chat_attributes(**search, **{sc.REQUEST_ID: f"t{i}"}) for i in range(4)], first)
    post(collector, [chat_attributes(**search, **{sc.END_USER: USER, sc.GEN_AI_REQUEST_MODEL: "gpt-4o",
                                                  sc.GEN_AI_RESPONSE_MODEL: "gpt-4o-2024-08-06"})],
         today + timedelta(seconds=30))  # fmt: skip
    post(collector, [chat_attributes(**{sc.TEAM: "ads", sc.REQUEST_ID: f"a{i}"}) for i in range(3)], today)
    post(collector, [chat_attributes(**search, **{sc.REQUEST_ID: f"y{i}"}) for i in range(5)],
         today - timedelta(hours=1))  # fmt: skip
    rules = [
        BUDGET,
        {**BUDGET, "name": "month by user", "window": "month", "op": ">=", "threshold": 0.1,
         "filters": {"end_user": [USER]}, "enforce": {"action": "downgrade", "downgrade_to": "gpt-4o-mini"}},
        {**BUDGET, "name": "gpt-4o this month", "window": "month", "threshold": 12.5, "filters": {"model": ["gpt-4o"]},
         "enforce": {"action": "warn"}},
        {**BUDGET, "name": "all", "window": "month", "filters": {}, "threshold": 1e20},
        {**BUDGET, "name": "not enforced", "enforce": None},
        {**BUDGET, "name": "disabled", "enabled": False},
    ]  # fmt: skip
    ids = [collector.http.post("/api/v1/alert-rules", json=rule).json()["id"] for rule in rules]
    before = datetime.now(UTC)
    answer = collector.get("/v1/guard/budgets")
    assert set(answer) == {"as_of", "budgets"}
    as_of = datetime.fromisoformat(answer["as_of"])
    assert as_of.utcoffset() == timedelta(0)
    assert before <= as_of <= datetime.now(UTC)
    budgets = {budget["id"]: budget for budget in answer["budgets"]}
    assert list(budgets) == ids[:4]  # enabled and enforced only, by id
    assert all(set(budget) == BUDGET_KEYS for budget in budgets.values())
    day, by_user, by_model, everything = (budgets[rule_id] for rule_id in ids[:4])
    month_start = today.replace(day=1)
    assert day == {
        "id": ids[0], "name": "search daily", "window": "day", "window_start": today.isoformat(),
        "filters": {"team": ["search"]}, "op": ">", "limit_usd": "5.000000000",
        "spent_usd": summary_cost(collector, today.isoformat(), team="search"), "action": "block",
        "downgrade_to": None,
    }  # fmt: skip
    assert Decimal(day["spent_usd"]) > 0
    # Today's search calls only: yesterday's and the ads team's are not in it.
    tomorrow = (today + timedelta(days=1)).isoformat()
    today_only = collector.get("/api/v1/summary", **{"from": today.isoformat(), "to": tomorrow, "team": "search"})
    assert day["spent_usd"] == today_only["cost_usd"]
    assert (by_user["window_start"], by_user["op"], by_user["limit_usd"]) == (
        month_start.isoformat(), ">=", "0.100000000"
    )  # fmt: skip
    assert (by_user["action"], by_user["downgrade_to"]) == ("downgrade", "gpt-4o-mini")
    # End users aren't kept in the rollup: that budget is summed from the raw calls, to the same digits.
    assert by_user["spent_usd"] == summary_cost(collector, month_start.isoformat(), end_user=USER)
    assert Decimal(by_user["spent_usd"]) > 0
    assert by_model["spent_usd"] == summary_cost(collector, month_start.isoformat(), model="gpt-4o")
    assert by_model["limit_usd"] == "12.500000000"
    assert everything["spent_usd"] == summary_cost(collector, month_start.isoformat())
    assert everything["limit_usd"] == "100000000000000000000.000000000"
    for budget in budgets.values():
        assert isinstance(budget["spent_usd"], str)
        assert len(budget["spent_usd"].split(".")[1]) == 9

    # A call stored after one answer is in the next: the budget moves with ingest.
    post(collector, [chat_attributes(**search, **{sc.REQUEST_ID: "late"})], today + timedelta(seconds=50))
    later = {budget["id"]: budget for budget in collector.get("/v1/guard/budgets")["budgets"]}
    assert Decimal(later[ids[0]]["spent_usd"]) > Decimal(day["spent_usd"])
    assert later[ids[0]]["spent_usd"] == summary_cost(collector, today.isoformat(), team="search")


def test_no_enforced_rule_is_an_empty_list(collector: RunningCollector) -> None:
    collector.http.post("/api/v1/alert-rules", json={**BUDGET, "enforce": None})
    answer = collector.get("/v1/guard/budgets")
    assert answer["budgets"] == []
    assert collector.get("/api/v1/guard/budgets")["budgets"] == []


def test_the_budgets_need_the_ingest_token_and_the_dashboards_twin_the_read_token(tmp_path: Path) -> None:
    running = RunningCollector(tmp_path / "tokens.duckdb", tokens=TOKENS)
    try:
        created = running.http.post("/api/v1/alert-rules", json=BUDGET, headers={"Authorization": "Bearer admin-g"})
        assert created.status_code == 201
        expected = {
            "/v1/guard/budgets": {None: 401, "nonsense": 401, "read-g": 403, "ingest-g": 200, "admin-g": 200},
            "/api/v1/guard/budgets": {None: 401, "ingest-g": 403, "read-g": 200, "admin-g": 200},
        }
        for path, statuses in expected.items():
            for token, status in statuses.items():
                headers = {"Authorization": f"Bearer {token}"} if token else {}
                answer = running.http.get(path, headers=headers)
                assert answer.status_code == status, (path, token, answer.text)
                if status == 200:
                    assert [budget["id"] for budget in answer.json()["budgets"]] == [created.json()["id"]]
    finally:
        running.stop()


def test_the_engine_evaluates_an_end_user_filter(collector: RunningCollector) -> None:
    today = midnight()
    post(collector, [chat_attributes(**{sc.END_USER: USER}), chat_attributes()], today + timedelta(seconds=1))
    rule = parse_rule({**BUDGET, "filters": {"end_user": [USER]}, "threshold": 0})
    con = collector.collector.store.reader()
    try:
        value, requests = measure(con, rule, datetime.now(UTC) + timedelta(minutes=1))
    finally:
        con.close()
    assert requests == 1
    assert Decimal(repr(value)) == Decimal(summary_cost(collector, today.isoformat(), end_user=USER))


# --- the guard's columns ---------------------------------------------------------------------------------------


def guarded(**overrides: Any) -> dict[str, Any]:
    return chat_attributes(**{sc.GUARD_ENABLED: True, **overrides})


BLOCKED = {sc.GUARD_ACTION: "blocked", sc.GUARD_BUDGET_ID: 3, sc.ERROR_TYPE: "BudgetExceeded",
           sc.GEN_AI_USAGE_INPUT_TOKENS: None, sc.GEN_AI_USAGE_OUTPUT_TOKENS: None,
           sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS: None, sc.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS: None,
           sc.GEN_AI_RESPONSE_MODEL: None, sc.GEN_AI_RESPONSE_FINISH_REASONS: None, sc.REQUEST_ID: None}  # fmt: skip


def test_guard_attributes_become_columns_and_odd_values_become_null() -> None:
    spans = [
        guarded(**BLOCKED),
        guarded(**{sc.GUARD_ACTION: "downgraded", sc.GUARD_BUDGET_ID: 4, sc.GUARD_ORIGINAL_MODEL: "gpt-4o"}),
        guarded(**{sc.GUARD_ACTION: "paced", sc.GUARD_WAIT_MS: 125.5}),
        guarded(**{sc.GUARD_ACTION: "circuit_open", sc.GUARD_BREAKER: "openai/gpt-4o-mini",
                   sc.ERROR_TYPE: "CircuitOpen"}),
        guarded(**{sc.GUARD_ACTION: "vaporised", sc.GUARD_BUDGET_ID: -2, sc.GUARD_WAIT_MS: -1.0}),
        guarded(**{sc.GUARD_ACTION: "warned", sc.GUARD_BUDGET_ID: 2**60, sc.GUARD_WAIT_MS: "soon"}),
        guarded(**{sc.GUARD_BUDGET_ID: 0, sc.GUARD_ENABLED: "yes"}),
        chat_attributes(),
    ]  # fmt: skip
    batch = normalize(request_with(spans))
    assert batch.rejected == []
    rows, rejected = keep_storable(batch.rows)
    assert rejected == []  # the guard's odd values never cost the call its row
    columns = ("guard_enabled", "guard_action", "guard_budget_id", "guard_breaker", "guard_original_model",
               "guard_wait_ms")  # fmt: skip
    assert [tuple(row[name] for name in columns) for row in rows] == [
        (True, "blocked", 3, None, None, None),
        (True, "downgraded", 4, None, "gpt-4o", None),
        (True, "paced", None, None, None, 125.5),
        (True, "circuit_open", None, "openai/gpt-4o-mini", None, None),
        (True, None, None, None, None, None),
        (True, "warned", None, None, None, None),
        (None, None, None, None, None, None),
        (None, None, None, None, None, None),
    ]
    assert (rows[0]["status"], rows[0]["error_type"], rows[0]["input_tokens"]) == ("error", "BudgetExceeded", None)
    assert rows[0]["source_dialect"] == "llmledger"


def test_guard_actions_filter_and_group_the_query_api(collector: RunningCollector) -> None:
    today = midnight()
    circuit = guarded(**{sc.GUARD_ACTION: "circuit_open", sc.GUARD_BREAKER: "openai/gpt-4o"})
    post(collector, [*alike(guarded(**BLOCKED), 2), guarded(**{sc.GUARD_ACTION: "downgraded"}),
                     *alike(guarded(), 3), circuit], today)  # fmt: skip
    post(collector, [guarded(**BLOCKED)], today - timedelta(days=2))
    every_day = {"from": (today - timedelta(days=3)).date().isoformat(),
                 "to": (today + timedelta(days=1)).date().isoformat()}  # fmt: skip
    acted = {"guard_action": ["blocked", "downgraded", "circuit_open", "paced"]}
    series = collector.get("/api/v1/timeseries", metric="requests", bucket="1d", group_by="guard_action", **every_day,
                           **acted)  # fmt: skip
    assert {(point["time"][:10], point["group"], point["value"]) for point in series["points"]} == {
        ((today - timedelta(days=2)).date().isoformat(), "blocked", 1),
        (today.date().isoformat(), "blocked", 2),
        (today.date().isoformat(), "downgraded", 1),
        (today.date().isoformat(), "circuit_open", 1),
    }
    # Whole days usually come from the rollup, which has no guard_action: these are read from the raw calls.
    groups = collector.get("/api/v1/breakdown", group_by="team", **every_day, guard_action="blocked")["groups"]
    assert [(group["group"], group["requests"], group["cost_usd"]) for group in groups] == [(None, 3, "0.000000000")]
    csv_text = collector.http.get("/api/v1/export.csv", params={"kind": "finance", **every_day,
                                                                "guard_action": "downgraded"}).text  # fmt: skip
    assert len(csv_text.strip().splitlines()) == 2
    breakers = collector.get("/api/v1/breakdown", group_by="guard_breaker", **every_day, **acted)["groups"]
    assert {group["group"]: group["requests"] for group in breakers} == {None: 4, "openai/gpt-4o": 1}
    assert collector.get("/api/v1/summary", **every_day, guard_action="blocked")["errors"] == 3


# --- backups and the lake -------------------------------------------------------------------------------------


def test_enforce_and_the_guard_columns_survive_backup_and_restore(collector: RunningCollector, tmp_path: Path) -> None:
    downgrade = {"action": "downgrade", "downgrade_to": "gpt-4o-mini"}
    assert collector.http.post("/api/v1/alert-rules", json={**BUDGET, "enforce": downgrade}).status_code == 201
    post(collector, [guarded(**BLOCKED)], midnight())
    assert collector.http.post("/api/v1/backup", json={"to": str(tmp_path / "bk")}).status_code == 200
    restore(tmp_path / "restored.duckdb", tmp_path / "bk")
    with duckdb.connect(str(tmp_path / "restored.duckdb"), read_only=True) as con:
        (enforce,) = con.execute("SELECT enforce FROM alert_rules").fetchone()
        row = con.execute("SELECT guard_enabled, guard_action, guard_budget_id FROM llm_calls").fetchone()
    assert json.loads(enforce) == downgrade
    assert row == (True, "blocked", 3)


def test_budgets_on_a_lake(lake: Lake) -> None:  # noqa: F811 - the fixture imported above
    running = RunningCollector(Path("unused.duckdb"), *lake.args("--flush-interval", "0.05"))
    try:
        today = midnight()
        post(running, [chat_attributes(**{sc.TEAM: "search", sc.REQUEST_ID: f"l{i}"}) for i in range(3)],
             today + timedelta(seconds=1))  # fmt: skip
        post(running, [guarded(**BLOCKED)], today + timedelta(seconds=5))
        created = running.http.post("/api/v1/alert-rules", json=BUDGET)
        assert created.status_code == 201, created.text
        user_budget = {**BUDGET, "window": "month", "filters": {"end_user": [USER]}, "enforce": {"action": "warn"}}
        assert running.http.post("/api/v1/alert-rules", json=user_budget).status_code == 201
        assert json.loads(lake.pg("SELECT enforce FROM llmledger.alert_rules ORDER BY id")[0][0]) == {
            "action": "block", "downgrade_to": None
        }  # fmt: skip
        day, by_user = running.get("/v1/guard/budgets")["budgets"]
        assert day["spent_usd"] == summary_cost(running, today.isoformat(), team="search")
        assert Decimal(day["spent_usd"]) > 0
        assert by_user["spent_usd"] == "0.000000000"
        assert running.get("/api/v1/alert-rules")["rules"][0]["enforce"] == {"action": "block", "downgrade_to": None}
        calls = running.get("/api/v1/calls", guard_action="blocked")["calls"]
        assert [(call["guard_enabled"], call["guard_budget_id"]) for call in calls] == [(True, 3)]
    finally:
        running.stop()


def test_migration_10_keeps_the_rules_and_survives_a_crash_before_any_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "old.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute(MIGRATIONS_TABLE)
        for number, name, apply in MIGRATIONS[:9]:
            apply(Schema(con))
            con.execute("INSERT INTO _migrations (id, name) VALUES (?, ?)", [number, name])
        for _ in range(2):
            con.execute(
                'INSERT INTO alert_rules (name, metric, "window", op, threshold, for_seconds, filters, channels, '
                "enabled, min_requests, created_at, updated_at) VALUES ('old', 'cost', 'day', '>', 5, 0, '{}', '[]', "
                "true, 0, now(), now())"
            )
    # Migrate and die at once, leaving the migration in the WAL only: the file must still open (and replay it).
    script = (
        "import os, sys, duckdb\n"
        "from collector.store.migrations import migrate\n"
        "con = duckdb.connect(sys.argv[1])\n"
        "con.execute(\"SET checkpoint_threshold = '1GB'\")\n"
        "assert migrate(con)[0] == 'm010_guard'\n"  # and every later one, in the same WAL
        "os._exit(0)\n"
    )
    subprocess.run([sys.executable, "-c", script, str(path)], cwd=ROOT, check=True, timeout=60)
    assert Path(f"{path}.wal").exists()
    store = Store(path)
    try:
        rules = store.reader().execute("SELECT id, name, enforce FROM alert_rules ORDER BY id").fetchall()
        assert rules == [(1, "old", None), (2, "old", None)]
        with store.transaction() as con:
            assert store.next_id(con, "alert_rule_ids") == 3  # the id sequence goes on
    finally:
        store.close()
