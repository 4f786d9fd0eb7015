"""POST /api/v1/sql: one read-only SELECT over views of the data, refused with a clear 4xx for anything else (files,
COPY, ATTACH, extensions, settings, writes, several statements, secrets tables, a query past the time limit), on a
DuckDB file and on a lake."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest

from collector.api.auth import Tokens
from tests.collector.test_lake import PROTOBUF, Lake, body
from tests.collector_harness import RunningCollector
from tests.lake_services import PostgresCluster

READ, ADMIN = "read-token-for-sql-tests", "admin-token-for-sql-tests"


@pytest.fixture
def collector(tmp_path: Path) -> Iterator[RunningCollector]:
    running = RunningCollector(tmp_path / "x.duckdb", tokens=Tokens(ingest="ingest-token", read=READ, admin=ADMIN))
    running.http.headers["Authorization"] = f"Bearer {READ}"  # what the dashboard's read token may do
    response = running.http.post(
        "/v1/traces", content=body("sql", 25), headers={**PROTOBUF, "Authorization": "Bearer ingest-token"}
    )
    assert response.status_code == 200, response.text
    rule = {
        "name": "spend",
        "metric": "cost",
        "window": "1h",
        "op": ">",
        "threshold": 5.0,
        "channels": [{"type": "webhook", "url": "https://hooks.example.com/secret-path"}],
    }
    created = running.http.post("/api/v1/alert-rules", json=rule, headers={"Authorization": f"Bearer {ADMIN}"})
    assert created.status_code == 201, created.text
    try:
        yield running
    finally:
        running.stop()


def sql(collector: RunningCollector, statement: str, **extra: str) -> tuple[int, dict | str]:
    response = collector.http.post(
        "/api/v1/sql", json={"sql": statement, **extra}, headers={"Authorization": f"Bearer {READ}"}
    )
    is_json = response.headers["content-type"].startswith("application/json")
    return response.status_code, response.json() if is_json else response.text


def test_a_select_over_the_views_answers_json_and_csv_with_the_read_token(collector: RunningCollector) -> None:
    status, answer = sql(
        collector,
        "SELECT c.service, count(*) AS calls, sum(c.cost_usd) AS cost, max(d.requests) AS rollup "
        "FROM llm_calls c JOIN llm_calls_daily d USING (service) GROUP BY c.service",
    )
    assert status == 200, answer
    assert [column["name"] for column in answer["columns"]] == ["service", "calls", "cost", "rollup"]
    assert answer["rows"] == [["checkout", 25, answer["rows"][0][2], 25]]
    assert answer["rows"][0][2] == collector.get("/api/v1/summary")["cost_usd"]  # exact decimal text, both
    status, text = sql(collector, "SELECT request_id FROM llm_calls ORDER BY request_id LIMIT 2", format="csv")
    assert status == 200
    assert list(csv.reader(io.StringIO(text))) == [["request_id"], ["sql-0"], ["sql-1"]]


def test_rows_past_the_limit_are_cut_and_said_to_be(collector: RunningCollector) -> None:
    status, answer = sql(collector, "SELECT * FROM range(20000)")
    assert status == 200
    assert answer["row_count"] == answer["max_rows"] == 10_000
    assert answer["truncated"] is True


@pytest.mark.parametrize(
    ("statement", "message"),
    [
        ("SELECT * FROM read_csv('/etc/passwd')", "file system operations are disabled"),
        ("SELECT * FROM read_text('/etc/passwd')", "file system operations are disabled"),
        ("SELECT * FROM '/etc/passwd'", "does not exist"),
        ("COPY (SELECT * FROM llm_calls) TO '/tmp/stolen.csv'", "COPY statement is not allowed"),
        ("ATTACH '/tmp/other.duckdb' AS other", "ATTACH statement is not allowed"),
        ("INSTALL httpfs", "statement is not allowed"),
        ("LOAD httpfs", "LOAD statement is not allowed"),
        ("SET enable_external_access = true", "SET statement is not allowed"),
        ("PRAGMA threads = 64", "statement is not allowed"),
        ("DELETE FROM llm_calls", "DELETE statement is not allowed"),
        ("INSERT INTO llm_calls (trace_id) VALUES ('x')", "INSERT statement is not allowed"),
        ("CREATE TABLE evil AS SELECT 1", "CREATE statement is not allowed"),
        ("DROP TABLE llm_calls", "DROP statement is not allowed"),
        ("SELECT 1; SELECT 2", "holds 2 statements"),
        ("SELECT 1; DROP TABLE llm_calls", "holds 2 statements"),
        ("SELECT * FROM alert_rules", "alert_rules does not exist"),
        ("SELECT channels FROM alert_rules", "alert_rules does not exist"),
        ("SELECT * FROM notification_claims", "does not exist"),
        ("SELECT * FROM duckdb_secrets()", "file system operations are disabled"),
        ("SELEC 1", "does not parse"),
        ("", "empty"),
    ],
)
def test_what_could_reach_the_machine_or_its_secrets_is_refused_with_a_clear_message(
    collector: RunningCollector, statement: str, message: str
) -> None:
    status, answer = sql(collector, statement)
    assert status == 400, answer
    assert answer["field"] == "sql"
    assert message in answer["error"], answer["error"]
    assert "secret-path" not in str(answer)
    assert not Path("/tmp/stolen.csv").exists()


def test_the_sandbox_cannot_turn_its_guards_off(collector: RunningCollector) -> None:
    status, answer = sql(
        collector, "SELECT current_setting('enable_external_access') AS external, current_setting('lock_configuration')"
    )
    assert (status, answer["rows"]) == (200, [[False, True]])


def test_a_query_past_the_time_limit_is_cancelled_and_the_collector_keeps_serving(collector: RunningCollector) -> None:
    status, answer = sql(
        collector, "SELECT count(*) FROM range(100000000) a, range(100000000) b WHERE a.range < b.range"
    )
    assert status == 408, answer
    assert "cancelled" in answer["error"]
    assert collector.get("/api/v1/summary")["requests"] == 25
    assert sql(collector, "SELECT count(*) AS n FROM llm_calls")[1]["rows"] == [[25]]


def test_bad_bodies_and_tokens_are_refused(collector: RunningCollector) -> None:
    response = collector.http.post(
        "/api/v1/sql", json={"query": "SELECT 1"}, headers={"Authorization": f"Bearer {READ}"}
    )
    assert (response.status_code, response.json()["field"]) == (400, "sql")
    status, answer = sql(collector, "SELECT 1", format="xlsx")
    assert (status, answer["field"]) == (400, "format")
    assert httpx2.post(f"{collector.url}/api/v1/sql", json={"sql": "SELECT 1"}).status_code == 401


@pytest.fixture
def lake(postgres_cluster: PostgresCluster, tmp_path: Path) -> Lake:
    return Lake(postgres_cluster, str(tmp_path / "lake-data"))


def test_the_same_guards_on_a_lake(lake: Lake) -> None:
    running = RunningCollector(Path("unused.duckdb"), *lake.args("--flush-interval", "0.05"))
    try:
        assert running.http.post("/v1/traces", content=body("lake", 12), headers=PROTOBUF).status_code == 200
        answer = running.http.post("/api/v1/sql", json={"sql": "SELECT sum(requests) AS n FROM llm_calls_daily"})
        assert answer.json()["rows"] == [[12]]
        for statement in ("SELECT * FROM read_csv('/etc/passwd')", "SELECT * FROM alert_rules", "ATTACH 'x.db'"):
            refused = running.http.post("/api/v1/sql", json={"sql": statement})
            assert refused.status_code == 400, refused.text
        attempt = running.http.post("/api/v1/sql", json={"sql": "SELECT * FROM pg.llmledger.alert_rules"})
        assert attempt.status_code == 400
        # Saved queries live in the lake's PostgreSQL state, like alert rules.
        query = running.http.post("/api/v1/sql/saved", json={"name": "n", "sql": "SELECT count(*) FROM llm_calls"})
        assert query.status_code == 201, query.text
        assert running.get("/api/v1/sql/saved")["queries"] == [query.json()]
        assert lake.pg("SELECT name FROM llmledger.saved_queries") == [("n",)]
        assert running.http.post("/api/v1/sql/saved", json={"name": "n", "sql": "SELECT 1"}).status_code == 409
        assert running.http.delete(f"/api/v1/sql/saved/{query.json()['id']}").status_code == 204
    finally:
        running.stop()


def saved(
    collector: RunningCollector, method: str, path: str = "", token: str = ADMIN, **body: object
) -> httpx2.Response:
    return collector.http.request(
        method, f"/api/v1/sql/saved{path}", json=body or None, headers={"Authorization": f"Bearer {token}"}
    )


def test_a_saved_query_is_listed_runs_and_is_deleted(collector: RunningCollector) -> None:
    statement = "SELECT service, count(*) AS calls FROM llm_calls GROUP BY service"
    created = saved(collector, "POST", name=" calls by service ", sql=statement + "\n", created_by="ana")
    assert created.status_code == 201, created.text
    query = created.json()
    assert {key: query[key] for key in ("name", "sql", "created_by")} == {
        "name": "calls by service", "sql": statement, "created_by": "ana",
    }  # fmt: skip
    assert saved(collector, "GET", token=READ).json() == {"queries": [query]}
    assert sql(collector, query["sql"])[1]["rows"] == [["checkout", 25]]
    assert saved(collector, "DELETE", f"/{query['id']}").status_code == 204
    assert saved(collector, "GET", token=READ).json() == {"queries": []}
    missing = saved(collector, "DELETE", f"/{query['id']}")
    assert (missing.status_code, missing.json()["error"]) == (404, f"no saved query {query['id']}")


def test_saved_queries_survive_a_restart_and_new_ids_follow_the_old(tmp_path: Path) -> None:
    tokens = Tokens(ingest="ingest-token", read=READ, admin=ADMIN)
    first = RunningCollector(tmp_path / "saved.duckdb", tokens=tokens)
    try:
        kept = saved(first, "POST", name="kept", sql="SELECT 1 AS one").json()
    finally:
        first.stop()
    again = RunningCollector(tmp_path / "saved.duckdb", tokens=tokens)
    try:
        added = saved(again, "POST", name="added", sql="SELECT 2 AS two").json()
        assert added["id"] > kept["id"]
        assert saved(again, "GET", token=READ).json() == {"queries": [added, kept]}  # by name
    finally:
        again.stop()


def test_a_name_already_saved_is_a_conflict_and_the_first_query_stays(collector: RunningCollector) -> None:
    first = saved(collector, "POST", name="spend", sql="SELECT sum(cost_usd) FROM llm_calls").json()
    taken = saved(collector, "POST", name="spend", sql="SELECT 1")
    assert taken.status_code == 409
    assert taken.json() == {"error": "a query named 'spend' is already saved", "field": "name"}
    assert saved(collector, "GET", token=READ).json()["queries"] == [first]


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"name": "wipe", "sql": "DELETE FROM llm_calls"}, "sql", "A DELETE statement is not allowed"),
        ({"name": "two", "sql": "SELECT 1; SELECT 2"}, "sql", "holds 2 statements"),
        ({"name": "copy", "sql": "COPY llm_calls TO '/tmp/x.csv'"}, "sql", "A COPY statement is not allowed"),
        ({"name": "typo", "sql": "SELEC 1"}, "sql", "does not parse"),
        ({"name": "nothing", "sql": "  "}, "sql", "empty"),
        ({"name": "", "sql": "SELECT 1"}, "name", "is required"),
        ({"name": "x" * 201, "sql": "SELECT 1"}, "name", "at most 200"),
        ({"sql": "SELECT 1"}, "name", "is required"),
        ({"name": "no sql"}, "sql", "is required"),
        ({"name": "n", "sql": "SELECT 1", "owner": "me"}, "owner", "is not a saved query field"),
        ({"name": "n", "sql": "SELECT 1", "created_by": 7}, "created_by", "must be a name"),
    ],
)
def test_a_bad_saved_query_is_refused_naming_the_field_and_nothing_is_saved(
    collector: RunningCollector, body: dict, field: str, message: str
) -> None:
    refused = saved(collector, "POST", **body)
    assert refused.status_code == 422, refused.text
    assert refused.json()["field"] == field
    assert message in refused.json()["error"], refused.json()
    assert saved(collector, "GET", token=READ).json() == {"queries": []}


def test_saving_and_deleting_need_the_admin_token(collector: RunningCollector) -> None:
    body = {"name": "n", "sql": "SELECT 1"}
    assert saved(collector, "POST", token=READ, **body).status_code == 403
    query = saved(collector, "POST", **body).json()
    assert saved(collector, "DELETE", f"/{query['id']}", token=READ).status_code == 403
    assert httpx2.get(f"{collector.url}/api/v1/sql/saved").status_code == 401
    assert saved(collector, "GET", token=READ).json() == {"queries": [query]}


def test_every_kind_of_value_a_select_returns_is_sent_as_json(collector: RunningCollector) -> None:
    status, answer = sql(
        collector,
        "SELECT DATE '2026-01-02' AS day, TIMESTAMPTZ '2026-01-02 03:04:05+00' AS moment, TIME '10:30' AS clock, "
        "INTERVAL 1 DAY AS span, 1.50::DECIMAL(4,2) AS money, 'nan'::DOUBLE AS nan, 'inf'::DOUBLE AS inf, "
        "[1, 2] AS list, {'a': DATE '2026-01-03'} AS struct, '\\x01'::BLOB AS blob, "
        "'6f1c1b9e-5b8e-4f3a-9d2a-1c2b3d4e5f60'::UUID AS id",
    )
    assert status == 200, answer
    assert answer["rows"] == [
        ["2026-01-02", "2026-01-02T03:04:05+00:00", "10:30:00", "1 day, 0:00:00", "1.50", "NaN", "Infinity", [1, 2],
         {"a": "2026-01-03"}, "01", "6f1c1b9e-5b8e-4f3a-9d2a-1c2b3d4e5f60"],
    ]  # fmt: skip
    assert [column["type"] for column in answer["columns"]][:2] == ["DATE", "TIMESTAMP WITH TIME ZONE"]
