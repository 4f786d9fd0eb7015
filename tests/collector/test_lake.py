"""Lake mode (`--lake`, `--data-path`): several collectors on one DuckLake (catalog and state in a throwaway
PostgreSQL, Parquet in a folder or a local S3), behind HAProxy, with the real wrapper sending through it."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import os
import shutil
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx2
import psycopg
import pytest

from collector.alerts.engine import RESEND_AFTER
from collector.store import hourly, latency_hourly, readiness_rollup
from collector.store.lake.compaction import compact
from collector.store.lake.connect import LakeConfigError, catalog_conninfo
from collector.store.lake.locks import LEADER, WRITE_CALLS, AdvisoryLock, LockLostError
from collector.store.lake.store import LakeStore
from collector.store.migrations import MIGRATIONS
from collector.store.retention import delete_before
from llmledger import pricing
from llmledger import semconv as sc
from llmledger.testing.fake_openai import FakeOpenAI
from tests.collector_harness import RunningCollector
from tests.lake_services import ROOT, CollectorProcess, HAProxy, MotoS3, PostgresCluster
from tests.otlp_spans import chat_attributes, request_with
from tests.price_server import MINI, MINI_DEARER, NOVA, PriceServer, price_file

from .test_alerts import WebhookSink

PROTOBUF = {"content-type": "application/x-protobuf"}
EVERYTHING = {"from": "2000-01-01T00:00:00Z", "to": "2100-01-01T00:00:00Z"}


class Lake:
    """A fresh lake: its own PostgreSQL database and data folder."""

    def __init__(self, cluster: PostgresCluster, data_path: str) -> None:
        self.dsn = cluster.create_database(f"lake_{uuid.uuid4().hex[:10]}")
        self.spec = f"postgres:{self.dsn}"
        self.data_path = data_path

    def args(self, *extra: str) -> list[str]:
        return ["--lake", self.spec, "--data-path", self.data_path, *extra]

    def pg(self, sql: str) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.dsn) as con:
            return con.execute(sql).fetchall()

    def pg_run(self, sql: str) -> None:
        with psycopg.connect(self.dsn, autocommit=True) as con:
            con.execute(sql)


@pytest.fixture
def lake(postgres_cluster: PostgresCluster, tmp_path: Path) -> Lake:
    return Lake(postgres_cluster, str(tmp_path / "lake-data"))


def body(tag: str, count: int, *, start_ns: int | None = None, service: str = "checkout", **attributes: Any) -> bytes:
    spans = [chat_attributes(**{sc.REQUEST_ID: f"{tag}-{i}", **attributes}) for i in range(count)]
    kwargs = {} if start_ns is None else {"start_ns": start_ns}
    return request_with(spans, service=service, **kwargs).SerializeToString()


def stored_request_ids(url: str) -> list[str]:
    text = httpx2.get(f"{url}/api/v1/export.csv", params={"kind": "calls", **EVERYTHING}, timeout=60).text
    return [row["request_id"] for row in csv.DictReader(io.StringIO(text))]


def rollup_requests(url: str) -> int:
    text = httpx2.get(f"{url}/api/v1/export.csv", params={"kind": "finance", **EVERYTHING}, timeout=60).text
    return sum(int(row["requests"]) for row in csv.DictReader(io.StringIO(text)))


def post_until_acknowledged(client: httpx2.Client, url: str, content: bytes, deadline: float) -> None:
    """What a retrying exporter does: send again (through the balancer) until a 200 comes back."""
    while True:
        try:
            if client.post(f"{url}/v1/traces", content=content, headers=PROTOBUF).status_code == 200:
                return
        except httpx2.TransportError:
            pass
        assert time.monotonic() < deadline, "a request was never acknowledged"
        time.sleep(0.05)


def test_one_collector_on_a_lake_stores_queries_and_keeps_state_in_postgres(lake: Lake) -> None:
    running = RunningCollector(Path("unused.duckdb"), *lake.args("--flush-interval", "0.05"))
    try:
        request = body("one", 30)
        for _ in range(2):  # the second is a re-send
            assert running.http.post("/v1/traces", content=request, headers=PROTOBUF).status_code == 200
        summary = running.get("/api/v1/summary", **EVERYTHING)
        assert summary["requests"] == 30
        assert sorted(stored_request_ids(running.url)) == sorted(f"one-{i}" for i in range(30))
        assert rollup_requests(running.url) == 30
        assert running.get("/healthz")["database"].startswith("lake postgres:")

        rule = {"name": "spend", "metric": "cost", "window": "1h", "op": ">", "threshold": 5.0}
        created = running.http.post("/api/v1/alert-rules", json=rule)
        assert created.status_code == 201, created.text
        second = running.http.post("/api/v1/alert-rules", json={**rule, "name": "spend 2"}).json()
        assert second["id"] == created.json()["id"] + 1
        assert running.http.put(f"/api/v1/alert-rules/{second['id']}", json={**rule, "threshold": 9}).status_code == 200
        assert running.http.delete(f"/api/v1/alert-rules/{second['id']}").status_code == 204
        assert running.http.delete(f"/api/v1/alert-rules/{second['id']}").status_code == 404

        # Calls are DuckLake tables (Parquet files); rules and migrations are plain PostgreSQL rows.
        lake_tables = {name for (name,) in lake.pg("SELECT table_name FROM ducklake_table WHERE end_snapshot IS NULL")}
        assert {"llm_calls", "llm_calls_daily"} <= lake_tables
        state_tables = {name for (name,) in lake.pg("SELECT tablename FROM pg_tables WHERE schemaname = 'llmledger'")}
        assert {"alert_rules", "alert_state", "alert_events", "notification_attempts", "_migrations"} <= state_tables
        assert "llm_calls" not in state_tables
        assert lake.pg("SELECT name FROM llmledger.alert_rules") == [("spend",)]
        assert len(lake.pg("SELECT id FROM llmledger._migrations")) == len(MIGRATIONS)
    finally:
        running.stop()


def readiness_calls_and_cost(running: RunningCollector) -> tuple[Any, Any]:
    con = running.collector.store.reader()
    try:
        return con.execute("SELECT sum(calls), sum(cost_usd_sum) FROM readiness_daily").fetchone()
    finally:
        con.close()


def test_repricing_and_retention_work_on_a_lake(lake: Lake, tmp_path: Path) -> None:
    prices = tmp_path / "prices.toml"
    prices.write_text(
        '[[price]]\nmodel = "gpt-4o-mini"\nfrom = 2025-01-01\ninput = 1.0\ncached_input = 1.0\noutput = 2.0\n'
    )
    running = RunningCollector(Path("unused.duckdb"), *lake.args("--flush-interval", "0.05"))
    try:
        assert running.http.post("/v1/traces", content=body("re", 10), headers=PROTOBUF).status_code == 200
        before = running.get("/api/v1/summary", **EVERYTHING)["cost_usd"]
    finally:
        running.stop()
    running = RunningCollector(Path("unused.duckdb"), *lake.args("--flush-interval", "0.05", "--prices", str(prices)))
    try:
        answer = running.http.post("/api/v1/reprice", params=EVERYTHING)
        assert answer.status_code == 200, answer.text
        assert answer.json()["rows_changed"] == 10
        after = running.get("/api/v1/summary", **EVERYTHING)["cost_usd"]
        # 10 calls of 1000 input (200 of them cached, at the same rate here) and 100 output tokens, $1 and $2 per M.
        assert after != before
        assert after == "0.012000000"
        finance = httpx2.get(f"{running.url}/api/v1/export.csv", params={"kind": "finance", **EVERYTHING}).text
        assert sum(float(row["cost_usd"]) for row in csv.DictReader(io.StringIO(finance))) == pytest.approx(0.012)
        assert readiness_calls_and_cost(running) == (10, Decimal(after))  # re-priced days rebuilt

        deleted = delete_before(running.collector.store, datetime(2100, 1, 1, tzinfo=UTC))
        assert deleted == 10
        assert running.get("/api/v1/summary", **EVERYTHING)["requests"] == 0
        assert rollup_requests(running.url) == 10  # spend by day outlives the raw calls
        assert readiness_calls_and_cost(running) == (None, None)  # the checklist's facts don't
    finally:
        running.stop()


def test_a_lake_on_s3(
    postgres_cluster: PostgresCluster,
    moto_s3: MotoS3,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    secret = "lake-secret-" + uuid.uuid4().hex  # moto takes any secret; this one can't appear by chance
    for name, value in {**moto_s3.env, "AWS_SECRET_ACCESS_KEY": secret}.items():
        monkeypatch.setenv(name, value)
    lake = Lake(postgres_cluster, f"s3://{moto_s3.bucket}/calls")
    running = RunningCollector(Path("unused.duckdb"), *lake.args("--flush-interval", "0.05"))
    try:
        assert running.http.post("/v1/traces", content=body("s3", 200), headers=PROTOBUF).status_code == 200
        assert running.get("/api/v1/summary", **EVERYTHING)["requests"] == 200
        assert any(key.endswith(".parquet") for key in moto_s3.list_keys("calls/"))
        assert "data s3://" in caplog.text  # the collector logged where the lake is ...
        assert secret not in caplog.text  # ... and never the S3 secret
    finally:
        running.stop()


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("postgres:dbname=x password=secret", "holds a password"),
        ("postgres:postgresql://user:secret@db.internal/x", "holds a password"),
        ("postgres:postgresql://user:secret@[db.internal/x", "not a PostgreSQL connection string"),
        ("sqlite:lake.db", "must name a PostgreSQL catalog"),
        ("postgres:", "needs a connection string"),
    ],
)
def test_lake_specs_that_cannot_be_used_are_refused(spec: str, message: str) -> None:
    with pytest.raises(LakeConfigError, match=message) as refused:
        catalog_conninfo(spec)
    assert "secret" not in str(refused.value)


def test_a_migration_half_applied_by_a_dead_collector_finishes_on_the_next_start(lake: Lake) -> None:
    LakeStore(lake.spec, lake.data_path).close()
    # As if the collector died after migrations 5-14 committed their DuckLake part (m005, m009 and m010 add columns
    # to llm_calls) and before their PostgreSQL part.
    with psycopg.connect(lake.dsn, autocommit=True) as con:
        con.execute("SET search_path TO llmledger")
        con.execute("DELETE FROM _migrations WHERE id >= 5")
        state_tables = ("price_rates", "reprice_runs", "openai_costs", "openai_usage", "openai_pulled_days",
                        "reconcile_runs", "readiness_attestations", "readiness_batch_features", "scrubbed_secrets",
                        "notification_claims", "price_lists", "saved_queries")  # fmt: skip
        for table in state_tables:
            con.execute(f"DROP TABLE {table}")
        for table in ("alert_silences", "alert_group_counts", "digests", "digest_sends", "digest_attempts"):  # m012-13
            con.execute(f"DROP TABLE {table}")
        sequences = ("reprice_run_ids", "reconcile_run_ids", "readiness_attestation_ids", "alert_silence_ids",
                     "digest_ids", "digest_send_ids", "digest_attempt_ids", "saved_query_ids")  # fmt: skip
        for sequence in sequences:
            con.execute(f"DROP SEQUENCE {sequence}")
        con.execute("ALTER TABLE alert_rules DROP COLUMN enforce")  # m010's PostgreSQL part
    store = LakeStore(lake.spec, lake.data_path)  # would fail adding m005's columns a second time
    store.close()
    assert lake.pg("SELECT id FROM llmledger._migrations ORDER BY id") == [(n,) for n, _name, _apply in MIGRATIONS]
    assert {"price_rates", "scrubbed_secrets"} <= {
        name for (name,) in lake.pg("SELECT tablename FROM pg_tables WHERE schemaname = 'llmledger'")
    }

    lake.pg_run("INSERT INTO llmledger._migrations (id, name) VALUES (99, 'm099_from_the_future')")
    with pytest.raises(LakeConfigError, match="migration 99, which this llmledger doesn't know"):
        LakeStore(lake.spec, lake.data_path)


def test_a_lock_whose_connection_broke_is_known_to_be_lost(lake: Lake) -> None:
    """PostgreSQL frees a session's locks when its connection goes (a proxy's idle timeout, a failover): the holder
    must find out before it commits, since another collector may hold the lock by then."""
    writer, other = (AdvisoryLock(lake.dsn, WRITE_CALLS, "writer of calls", max_wait_s=5) for _ in range(2))
    leader = AdvisoryLock(lake.dsn, LEADER, "leader")
    kill = "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'llmledger {}'"
    try:
        assert leader.holds()
        with writer.held() as still_held:
            still_held()
            lake.pg_run(kill.format("writer of calls"))
            lake.pg_run(kill.format("leader"))
            with other.held() as other_still_held:  # another collector takes it at once
                other_still_held()
            with pytest.raises(LockLostError):
                still_held()
        assert not leader.holds()  # lost with its connection ...
        assert leader.holds()  # ... and taken again on a new one, being free
    finally:
        for lock in (writer, other, leader):
            lock.close()


def test_a_writer_kept_waiting_fails_its_whole_batch_at_once(
    lake: Lake, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Another collector holds the writers' lock (a long re-pricing, say): requests get a 503 to retry after one
    wait, not one wait per request of the batch."""
    import collector.store.lake.store

    monkeypatch.setattr(collector.store.lake.store, "WRITER_WAIT_S", 1)
    running = RunningCollector(Path("unused.duckdb"), *lake.args("--flush-interval", "0.5"))
    other = AdvisoryLock(lake.dsn, WRITE_CALLS, "writer of calls")
    try:
        requests = [body(f"busy-{n}", 5) for n in range(3)]
        with other.held():
            answers: list[int] = []

            def post(content: bytes) -> None:
                answer = httpx2.post(f"{running.url}/v1/traces", content=content, headers=PROTOBUF, timeout=60)
                answers.append(answer.status_code)

            senders = [threading.Thread(target=post, args=(content,)) for content in requests]
            for sender in senders:
                sender.start()
            for sender in senders:
                sender.join(60)
        assert answers == [503, 503, 503]
        assert "one by one" not in caplog.text
        for content in requests:  # the lock is free again: the senders' retries go through
            assert running.http.post("/v1/traces", content=content, headers=PROTOBUF).status_code == 200
        assert running.get("/api/v1/summary", **EVERYTHING)["requests"] == 15
    finally:
        other.close()
        running.stop()


# --- several collectors ------------------------------------------------------------------------------------------

APP = """
import os, openai, llmledger
llmledger.configure(service_name="through-the-balancer")
llmledger.instrument()
client = openai.OpenAI()
for n in range(int(os.environ["CALLS"])):
    client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": f"hi {n}"}])
assert llmledger.flush(timeout=30)
"""


def run_app(fake: FakeOpenAI, endpoint: str, calls: int, spool: Path) -> None:
    env = {**os.environ, "OPENAI_BASE_URL": fake.base_url, "OPENAI_API_KEY": "sk-proj-example",
           "LLMLEDGER_ENDPOINT": endpoint, "LLMLEDGER_SPOOL_DIR": str(spool), "CALLS": str(calls)}  # fmt: skip
    result = subprocess.run([sys.executable, "-c", APP], env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


class Pair:
    """Two collector processes on one lake, and HAProxy in front of them."""

    def __init__(
        self, lake: Lake, tmp_path: Path, start_haproxy: Callable[[Sequence[tuple[str, int]]], HAProxy], *extra: str
    ) -> None:
        self.lake, self.tmp_path, self.extra = lake, tmp_path, extra
        self.collectors = [self.start(name) for name in ("a", "b")]
        self.balancer = start_haproxy([("127.0.0.1", c.port) for c in self.collectors])

    def start(self, name: str) -> CollectorProcess:
        args = self.lake.args("--flush-interval", "0.2", *self.extra)
        return CollectorProcess(args, log_path=self.tmp_path / f"collector-{name}.log")

    def restart(self, index: int) -> None:
        port = self.collectors[index].port
        args = [*self.lake.args("--flush-interval", "0.2", *self.extra), "--port", str(port)]
        self.collectors[index] = CollectorProcess(args, log_path=self.tmp_path / f"collector-{'ab'[index]}.log")

    def stop(self) -> None:
        for collector in self.collectors:
            if collector.process.poll() is None:
                collector.terminate()


@pytest.fixture
def pair(lake: Lake, tmp_path: Path, start_haproxy: Callable[[Sequence[tuple[str, int]]], HAProxy]) -> Iterator[Pair]:
    running = Pair(lake, tmp_path, start_haproxy, "--alert-interval", "1")
    yield running
    running.stop()


def test_two_collectors_behind_a_balancer_count_every_span_once(pair: Pair, fake: FakeOpenAI, tmp_path: Path) -> None:
    a, b = pair.collectors
    # The real wrapper, sending through the balancer.
    run_app(fake, pair.balancer.url, 40, tmp_path / "spool")
    assert len(stored_request_ids(a.url)) == 40

    # The same batches sent to both collectors at once: each span is stored once.
    bodies = [body(f"both-{n}", 50, start_ns=1_764_000_000_000_000_000 + n * 10**12) for n in range(12)]

    def send_all(url: str) -> None:
        with httpx2.Client(timeout=60) as client:
            for content in bodies:
                assert client.post(f"{url}/v1/traces", content=content, headers=PROTOBUF).status_code == 200

    threads = [threading.Thread(target=send_all, args=(c.url,)) for c in (a, b)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    ids = stored_request_ids(b.url)
    assert len(ids) == len(set(ids)) == 40 + 12 * 50

    # One collector killed mid-ingest: senders retry through the balancer until acknowledged.
    sent: list[str] = []
    stop_sending = threading.Event()
    acknowledged = threading.Semaphore(0)

    def sender(number: int) -> None:
        with httpx2.Client(timeout=30) as client:
            batch = 0
            while not stop_sending.is_set():
                tag = f"kill-{number}-{batch}"
                sent.append(tag)
                content = body(tag, 100, start_ns=1_764_100_000_000_000_000 + (number * 1000 + batch) * 10**11)
                post_until_acknowledged(client, pair.balancer.url, content, time.monotonic() + 90)
                acknowledged.release()
                batch += 1

    senders = [threading.Thread(target=sender, args=(n,)) for n in range(4)]
    for thread in senders:
        thread.start()
    for _ in range(8):
        assert acknowledged.acquire(timeout=60)
    b.kill()
    for _ in range(8):  # the balancer and the senders carry on with collector a alone
        assert acknowledged.acquire(timeout=60)
    stop_sending.set()
    for thread in senders:
        thread.join(120)
    pair.restart(1)
    a, b = pair.collectors

    ids = stored_request_ids(a.url)
    expected = {f"{tag}-{i}" for tag in sent for i in range(100)}
    kill_ids = [value for value in ids if value.startswith("kill-")]
    assert len(kill_ids) == len(set(kill_ids))  # none twice
    assert set(kill_ids) == expected  # every acknowledged span stored
    assert rollup_requests(a.url) == len(ids)

    # Either collector answers every query the same way.
    for path, params in (
        ("/api/v1/summary", EVERYTHING),
        ("/api/v1/breakdown", {**EVERYTHING, "group_by": "service"}),
        ("/api/v1/export.csv", {**EVERYTHING, "kind": "finance"}),
        ("/api/v1/export.csv", {**EVERYTHING, "kind": "calls"}),
    ):
        answers = [httpx2.get(f"{c.url}{path}", params=params, timeout=60) for c in (a, b)]
        assert answers[0].status_code == answers[1].status_code == 200
        assert answers[0].content == answers[1].content, path

    # `llmledger check` through the balancer scores the app as either collector does.
    today = datetime.now(tz=UTC).date()
    period = {"from": (today - timedelta(days=6)).isoformat(), "to": (today + timedelta(days=1)).isoformat()}
    cards = [httpx2.get(f"{c.url}/api/v1/readiness", params={"service": "through-the-balancer", **period}, timeout=60)
             for c in (a, b)]  # fmt: skip
    assert cards[0].status_code == 200, cards[0].text
    assert cards[0].json() == cards[1].json()
    command = [sys.executable, "-m", "llmledger_cli", "check", "--api", pair.balancer.url, "--service",
               "through-the-balancer", "--from", period["from"], "--to", period["to"], "--format", "json"]  # fmt: skip
    checked = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert checked.returncode == 0, checked.stderr
    assert json.loads(checked.stdout) == cards[0].json()


def test_leader_killed_while_an_alert_fires_notifies_once_per_transition(pair: Pair) -> None:
    webhook = WebhookSink()
    try:
        a, b = pair.collectors
        channels = [{"type": "webhook", "url": webhook.url}]
        rule = {"name": "busy", "metric": "requests", "window": "5m", "op": ">", "threshold": 5, "for": "0s",
                "filters": {"service": ["alerting"]}, "channels": channels}  # fmt: skip
        assert httpx2.post(f"{pair.balancer.url}/api/v1/alert-rules", json=rule).status_code == 201
        # Calls that leave the 5-minute window about 20 s from now, so the alert resolves on its own.
        start_ns = time.time_ns() - (300 - 20) * 10**9
        answer = httpx2.post(f"{a.url}/v1/traces", content=body("al", 10, start_ns=start_ns, service="alerting"),
                             headers=PROTOBUF, timeout=30)  # fmt: skip
        assert answer.status_code == 200
        firing = webhook.wait_for(1, timeout=15)
        assert [message["state"] for message in firing] == ["firing"]

        leaders = [c for c in (a, b) if "now the leader" in c.log_text()]
        assert len(leaders) == 1
        leader = leaders[0]
        follower = b if leader is a else a
        leader.kill()
        deadline = time.monotonic() + 10
        while "now the leader" not in follower.log_text():
            assert time.monotonic() < deadline, "no collector took over"
            time.sleep(0.1)

        received = webhook.wait_for(2, timeout=40)
        assert [message["state"] for message in received] == ["firing", "resolved"]
        time.sleep(2)  # evaluations go on; nothing more is sent
        assert len(webhook.received) == 2
        events = httpx2.get(f"{follower.url}/api/v1/alert-events", timeout=30).json()["events"]
        assert [(e["from_state"], e["to_state"]) for e in reversed(events)] == [
            ("ok", "firing"),
            ("firing", "resolved"),
        ]
    finally:
        webhook.close()


def test_leader_killed_while_a_grouped_alert_fires_notifies_once_per_group_transition(pair: Pair) -> None:
    webhook = WebhookSink()
    try:
        a, b = pair.collectors
        channels = [{"type": "webhook", "url": webhook.url}]
        rule = {"name": "busy", "metric": "requests", "window": "5m", "op": ">", "threshold": 5, "group_by": "service",
                "filters": {"environment": ["production"]}, "channels": channels}  # fmt: skip
        assert httpx2.post(f"{pair.balancer.url}/api/v1/alert-rules", json=rule).status_code == 201
        # Calls that leave the 5-minute window about 20 s from now, so each group resolves on its own.
        start_ns = time.time_ns() - (300 - 20) * 10**9
        for service in ("alerting-a", "alerting-b"):
            answer = httpx2.post(f"{a.url}/v1/traces", content=body(service, 10, start_ns=start_ns, service=service),
                                 headers=PROTOBUF, timeout=30)  # fmt: skip
            assert answer.status_code == 200
        firing = webhook.wait_for(2, timeout=15)
        assert sorted((m["state"], m["title"]) for m in firing) == [
            ("firing", "busy [service=alerting-a]"),
            ("firing", "busy [service=alerting-b]"),
        ]
        leaders = [c for c in (a, b) if "now the leader" in c.log_text()]
        assert len(leaders) == 1
        leader = leaders[0]
        follower = b if leader is a else a
        leader.kill()
        deadline = time.monotonic() + 10
        while "now the leader" not in follower.log_text():
            assert time.monotonic() < deadline, "no collector took over"
            time.sleep(0.1)

        received = webhook.wait_for(4, timeout=40)
        assert sorted((m["state"], m["group"]["service"]) for m in received) == [
            ("firing", "alerting-a"), ("firing", "alerting-b"), ("resolved", "alerting-a"), ("resolved", "alerting-b"),
        ]  # fmt: skip
        time.sleep(2)  # evaluations go on; nothing more is sent
        assert len(webhook.received) == 4
        events = httpx2.get(f"{follower.url}/api/v1/alert-events", timeout=30).json()["events"]
        assert sorted((e["group"]["service"], e["from_state"], e["to_state"]) for e in events) == [
            ("alerting-a", "firing", "resolved"), ("alerting-a", "ok", "firing"),
            ("alerting-b", "firing", "resolved"), ("alerting-b", "ok", "firing"),
        ]  # fmt: skip
    finally:
        webhook.close()


def test_a_transition_a_dead_leader_never_notified_is_delivered_once_by_the_next(lake: Lake) -> None:
    webhook = WebhookSink()
    running = RunningCollector(Path("unused.duckdb"), *lake.args("--alert-interval", "3600"))
    try:
        channels = [{"type": "webhook", "url": webhook.url}]
        rule = {"name": "any", "metric": "requests", "window": "1h", "op": ">", "threshold": 0, "channels": channels}
        rule_id = running.http.post("/api/v1/alert-rules", json=rule).json()["id"]
        now = datetime.now(tz=UTC)
        assert running.http.post("/v1/traces", content=body("d", 3, start_ns=time.time_ns() - 60 * 10**9),
                                 headers=PROTOBUF).status_code == 200  # fmt: skip
        engine = running.collector.alert_engine
        con = running.collector.store.reader()
        try:
            (_, parsed), *_ = engine.alerts.rules(con)
            # What the dead leader left: the transition in PostgreSQL, no delivery attempt.
            event_id = engine.alerts.record(rule_id, parsed, "ok", "firing", now, 3.0, 3, now, "firing", claimed_by="a")
            assert engine.alerts.record(rule_id, parsed, "ok", "firing", now, 3.0, 3, now, "firing") is None
            assert engine.evaluate_once(con, now + RESEND_AFTER) == []  # still firing: no new transition
            (delivered,) = webhook.wait_for(1)
            assert (delivered["state"], delivered["rule_id"]) == ("firing", rule_id)
            engine.evaluate_once(con, now + 2 * RESEND_AFTER)
        finally:
            con.close()
        time.sleep(0.3)
        assert len(webhook.received) == 1
        assert lake.pg("SELECT event_id, ok FROM llmledger.notification_attempts") == [(event_id, True)]
    finally:
        running.stop()
        webhook.close()


def restore_cli(*args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "llmledger_cli", "restore", *args]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=180)


def snapshot(running: RunningCollector) -> tuple[Any, ...]:
    """What a user sees: totals, spend by day and model, and the alert rules."""
    finance = httpx2.get(f"{running.url}/api/v1/export.csv", params={"kind": "finance", **EVERYTHING}, timeout=60)
    rules = [(rule["id"], rule["name"]) for rule in running.get("/api/v1/alert-rules")["rules"]]
    return running.get("/api/v1/summary", **EVERYTHING), finance.text, rules


def test_a_file_database_moves_into_a_lake_and_a_lake_backs_up(
    postgres_cluster: PostgresCluster, lake: Lake, tmp_path: Path
) -> None:
    rule = {"name": "spend", "metric": "cost", "window": "day", "op": ">", "threshold": 5.0}
    source = RunningCollector(tmp_path / "source.duckdb")
    try:
        for n in range(3):
            # Billing units too: the backup of a lake's rollup (delta rows merged) must keep their sums exact.
            units = {sc.USAGE_AUDIO_SECONDS: 0.1, sc.USAGE_WEB_SEARCH_CALLS: 1} if n else {}
            request = body(f"file-{n}", 40, start_ns=1_764_000_000_000_000_000 + n * 86_400 * 10**9, **units)
            assert source.http.post("/v1/traces", content=request, headers=PROTOBUF).status_code == 200
        for name in ("first", "second"):
            assert source.http.post("/api/v1/alert-rules", json={**rule, "name": name}).status_code == 201
        expected = snapshot(source)
        assert source.http.post("/api/v1/backup", json={"to": str(tmp_path / "file-backup")}).status_code == 200
    finally:
        source.stop()

    result = restore_cli("--from", str(tmp_path / "file-backup"), *lake.args())
    assert result.returncode == 0, result.stderr
    assert "llm_calls 120" in result.stdout
    again = restore_cli("--from", str(tmp_path / "file-backup"), *lake.args())
    assert again.returncode == 1
    assert "never merges" in again.stderr

    moved = RunningCollector(Path("unused.duckdb"), *lake.args("--flush-interval", "0.05"))
    try:
        assert snapshot(moved) == expected
        third = moved.http.post("/api/v1/alert-rules", json={**rule, "name": "third"}).json()
        assert third["id"] == 3  # the id sequence continues after the restored rules
        # More calls on a day the lake has: its rollup now holds a second (delta) row for the same key.
        request = body("lake-0", 10, start_ns=1_764_000_000_000_000_000 + 86_400 * 10**9 + 3_600 * 10**9,
                       **{sc.USAGE_AUDIO_SECONDS: 0.1, sc.USAGE_WEB_SEARCH_CALLS: 1})  # fmt: skip
        assert moved.http.post("/v1/traces", content=request, headers=PROTOBUF).status_code == 200
        answer = moved.http.post("/api/v1/backup", json={"to": str(tmp_path / "lake-backup")})
        assert answer.status_code == 200, answer.text
        assert answer.json()["rows"]["llm_calls"] == 130
        expected = snapshot(moved)
        # 90 calls of 0.1 s: exactly 9 s (each call's seconds to the nanosecond, summed as a DECIMAL).
        assert expected[0]["audio_seconds"] == 9.0
        assert expected[0]["web_search_calls"] == 90
    finally:
        moved.stop()

    result = restore_cli("--from", str(tmp_path / "lake-backup"), "--db", str(tmp_path / "back.duckdb"))
    assert result.returncode == 0, result.stderr
    back = RunningCollector(tmp_path / "back.duckdb")
    try:
        assert snapshot(back) == expected
        assert back.http.post("/api/v1/alert-rules", json={**rule, "name": "fourth"}).json()["id"] == 4
        # The file's ingest adds to the one row of that day and key (a delta row per lake commit would each get it).
        request = body("back-0", 5, start_ns=1_764_000_000_000_000_000 + 7_200 * 10**9)
        assert back.http.post("/v1/traces", content=request, headers=PROTOBUF).status_code == 200
        assert rollup_requests(back.url) == len(stored_request_ids(back.url)) == 135
    finally:
        back.stop()

    other = Lake(postgres_cluster, str(tmp_path / "other-lake"))
    result = restore_cli("--from", str(tmp_path / "lake-backup"), *other.args())
    assert result.returncode == 0, result.stderr
    copy = RunningCollector(Path("unused.duckdb"), *other.args())
    try:
        assert snapshot(copy) == expected
    finally:
        copy.stop()


def test_a_lake_of_the_version_before_migrates_and_keeps_its_rolled_up_days(
    lake: Lake, monkeypatch: pytest.MonkeyPatch
) -> None:
    from collector.store import rollups
    from collector.store.lake import schema as lake_schema

    with monkeypatch.context() as before:
        before.setattr(lake_schema, "MIGRATIONS", MIGRATIONS[:8])
        old = LakeStore(lake.spec, lake.data_path)
        try:
            with old.calls_transaction() as con:
                # A day retention emptied of raw calls, rolled up by the version before (its columns only).
                con.execute("INSERT INTO llm_calls_daily BY NAME SELECT DATE '2025-10-01' AS day, 7 AS requests, "
                            "5 AS input_tokens, 0 AS cached_input_tokens, 0 AS output_tokens, 0 AS reasoning_tokens, "
                            "1 AS cost_usd, 0 AS unpriced_requests")  # fmt: skip
        finally:
            old.close()
    running = RunningCollector(Path("unused.duckdb"), *lake.args("--flush-interval", "0"))
    try:
        for tag in ("a", "b"):  # two commits: two delta rows per key
            whisper = {sc.GEN_AI_REQUEST_MODEL: "whisper-1", sc.GEN_AI_RESPONSE_MODEL: "whisper-1"}
            request = body(tag, 5, **{sc.BILLING_UNIT: "audio_seconds", sc.USAGE_AUDIO_SECONDS: 0.1, **whisper})
            assert running.http.post("/v1/traces", content=request, headers=PROTOBUF).status_code == 200
        finance = httpx2.get(f"{running.url}/api/v1/export.csv", params={"kind": "finance", **EVERYTHING}).text
        lines = {line["period"]: line for line in csv.DictReader(io.StringIO(finance))}
        kept = lines.pop("2025-10-01")
        assert (kept["requests"], kept["provider"], kept["billing_unit"], kept["audio_seconds"], kept["images"]) == (
            "7", "openai", "", "0.000000000", "0",
        )  # fmt: skip
        ((_, new),) = lines.items()
        assert (new["requests"], new["billing_unit"], new["audio_seconds"]) == ("10", "audio_seconds", "1.000000000")
        groups = running.get("/api/v1/breakdown", group_by="billing_unit", **EVERYTHING)["groups"]
        assert {group["group"]: group["audio_seconds"] for group in groups} == {"audio_seconds": 1.0, None: 0.0}
        # The rollup, delta rows merged, is what rolling up the raw calls gives (but for the day they left).
        raw = rollups.aggregate("llm_calls")
        readiness_raw = readiness_rollup.aggregate("llm_calls")
        con = running.collector.store.reader()
        try:
            kept_days = con.execute(
                f"SELECT * FROM ({rollups.merged('llm_calls_daily')}) WHERE day <> DATE '2025-10-01' ORDER BY ALL"
            ).fetchall()
            rebuilt = con.execute(f"SELECT * FROM ({rollups.merged(f'({raw})')}) ORDER BY ALL").fetchall()
            # So is the readiness rollup (migration 18 built it from the calls the lake had, ingest added deltas).
            readiness_kept = con.execute(
                f"SELECT * FROM ({readiness_rollup.merged('readiness_daily')}) ORDER BY ALL"
            ).fetchall()
            readiness_rebuilt = con.execute(
                f"SELECT * FROM ({readiness_rollup.merged(f'({readiness_raw})')}) ORDER BY ALL"
            ).fetchall()
        finally:
            con.close()
        assert kept_days == rebuilt
        assert readiness_kept == readiness_rebuilt
        assert sum(row[-8] for row in readiness_kept) == 10  # the calls column, before the 7 sums
    finally:
        running.stop()


def test_a_restore_cut_off_after_the_state_is_finished_by_running_it_again(
    postgres_cluster: PostgresCluster, lake: Lake, tmp_path: Path
) -> None:
    backups, snapshots = {}, {}
    for name in ("ours", "theirs"):
        source = RunningCollector(tmp_path / f"{name}.duckdb")
        try:
            assert source.http.post("/v1/traces", content=body(name, 20), headers=PROTOBUF).status_code == 200
            rule = {"name": f"{name} spend", "metric": "cost", "window": "day", "op": ">", "threshold": 5.0}
            assert source.http.post("/api/v1/alert-rules", json=rule).status_code == 201
            backups[name] = tmp_path / f"{name}-backup"
            assert source.http.post("/api/v1/backup", json={"to": str(backups[name])}).status_code == 200
            snapshots[name] = snapshot(source)
        finally:
            source.stop()
    # A copy whose calls can't be read: the state goes in, then loading the calls fails.
    broken = tmp_path / "broken-backup"
    shutil.copytree(backups["ours"], broken)
    (broken / "llm_calls.parquet").write_bytes(b"not parquet")
    failed = restore_cli("--from", str(broken), *lake.args())
    assert failed.returncode == 1
    assert "loading the backup failed" in failed.stderr
    assert lake.pg("SELECT name FROM llmledger.alert_rules") == [("ours spend",)]

    refused = restore_cli("--from", str(backups["theirs"]), *lake.args())  # other state: never merged
    assert refused.returncode == 1
    assert "isn't this backup's" in refused.stderr
    finished = restore_cli("--from", str(backups["ours"]), *lake.args())
    assert finished.returncode == 0, finished.stderr
    moved = RunningCollector(Path("unused.duckdb"), *lake.args())
    try:
        assert snapshot(moved) == snapshots["ours"]
    finally:
        moved.stop()


def test_the_leader_compacts_the_lake_without_changing_an_answer(lake: Lake, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="llmledger.collector")
    running = RunningCollector(Path("unused.duckdb"), *lake.args("--flush-interval", "0", "--compact-interval", "1"))
    try:
        requests = [body(f"c{n}", 50, start_ns=1_764_000_000_000_000_000 + n * 600 * 10**9) for n in range(6)]
        for request in requests:  # six commits, six small files
            assert running.http.post("/v1/traces", content=request, headers=PROTOBUF).status_code == 200
        active = "SELECT count(*) FROM ducklake_data_file f JOIN ducklake_table t USING (table_id) " \
                 "WHERE t.table_name = 'llm_calls' AND f.end_snapshot IS NULL AND t.end_snapshot IS NULL"  # fmt: skip
        before = snapshot(running), lake.pg(active)[0][0]
        assert before[1] >= 2
        deadline = time.monotonic() + 20
        while lake.pg(active)[0][0] >= before[1] or "lake compaction:" not in caplog.text:  # (it logs after commit)
            assert time.monotonic() < deadline, "no compaction ran"
            time.sleep(0.2)
        assert "now the leader" in caplog.text
        assert snapshot(running) == before[0]
        con = running.collector.store.reader()
        try:  # six commits in one hour left six delta rows per key of each rollup; compaction folded them
            for table, rollup in (
                ("readiness_daily", readiness_rollup),
                ("llm_calls_hourly", hourly),
                ("llm_calls_latency_hourly", latency_hourly),
            ):
                rows = con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
                kept = con.execute(f"SELECT * FROM ({rollup.merged(table)}) ORDER BY ALL").fetchall()
                rebuilt = rollup.merged(f"({rollup.aggregate('llm_calls')})")
                assert kept == con.execute(f"SELECT * FROM ({rebuilt}) ORDER BY ALL").fetchall(), table
                assert rows == len(kept), table
        finally:
            con.close()
        assert running.http.post("/v1/traces", content=requests[0], headers=PROTOBUF).status_code == 200
        assert snapshot(running) == before[0]  # a re-send after compaction is still recognised
    finally:
        running.stop()


def test_compaction_while_ingesting_loses_and_doubles_nothing(lake: Lake) -> None:
    running = RunningCollector(Path("unused.duckdb"), *lake.args("--flush-interval", "0", "--compact-interval", "0"))
    try:
        stop, answers, sent = threading.Event(), [], []

        def post() -> None:
            with httpx2.Client(timeout=60) as client:
                while not stop.is_set():
                    tag = f"w{len(sent)}"
                    content = body(tag, 20, start_ns=1_764_000_000_000_000_000 + len(sent) * 60 * 10**9)
                    answer = client.post(f"{running.url}/v1/traces", content=content, headers=PROTOBUF)
                    answers.append(answer.status_code)
                    sent.append(tag)

        sender = threading.Thread(target=post)
        sender.start()
        try:
            passes = []
            for _ in range(8):
                time.sleep(0.2)
                passes.append(compact(running.collector.store))
                # Queries run meanwhile too, and see whole commits only (each request's 20 spans or none).
                assert running.get("/api/v1/summary", **EVERYTHING)["requests"] % 20 == 0
        finally:
            stop.set()
            sender.join(60)
        assert sum(result["merged"] for result in passes) > 0
        assert set(answers) == {200}
        ids = stored_request_ids(running.url)
        assert len(ids) == len(set(ids)) == 20 * len(sent)
        assert rollup_requests(running.url) == len(ids)
    finally:
        running.stop()


def test_on_a_lake_the_leader_fetches_the_price_list_and_every_collector_prices_with_it(
    lake: Lake, tmp_path: Path
) -> None:
    server = PriceServer()
    args = lake.args("--flush-interval", "0.05", "--prices-update", server.url, "--prices-update-interval", "0.3")
    collectors = [CollectorProcess(args, log_path=tmp_path / f"collector-{name}.log") for name in "ab"]
    try:

        def versions() -> list[str]:
            return [httpx2.get(f"{c.url}/healthz", timeout=10).json()["prices"]["list_version"] for c in collectors]

        def outcomes(collector: CollectorProcess) -> dict[str, float]:
            lines = httpx2.get(f"{collector.url}/metrics", timeout=10).text.splitlines()
            prefix = 'llmledger_price_updates_total{outcome="'
            return {
                line[len(prefix) :].split('"')[0]: float(line.split()[-1]) for line in lines if line.startswith(prefix)
            }

        for body in (price_file(MINI), price_file(MINI_DEARER, NOVA)):
            server.serve(body)
            version = pricing.list_version(hashlib.sha256(body).hexdigest())
            deadline = time.monotonic() + 60
            while versions() != [version, version]:
                assert time.monotonic() < deadline, f"the collectors never both priced with {version}: {versions()}"
                time.sleep(0.1)
        leaders = [httpx2.get(f"{c.url}/healthz", timeout=10).json()["prices"]["updates"]["leader"] for c in collectors]
        assert sorted(leaders) == [False, True]
        leader, follower = collectors[leaders.index(True)], collectors[leaders.index(False)]
        # Only the leader downloads (each new list once); the other took both from the lake.
        assert outcomes(leader)["new"] == 2
        assert "new" not in outcomes(follower)
        assert "unchanged" not in outcomes(follower)
        assert outcomes(follower)["adopted"] == 2
        # A call through the other collector is priced with the leader's list: 800 x 2 + 200 x 0.5 + 100 x 8 = 2500.
        nova = {sc.GEN_AI_REQUEST_MODEL: "gpt-9-nova", sc.GEN_AI_RESPONSE_MODEL: "gpt-9-nova",
                sc.GEN_AI_USAGE_INPUT_TOKENS: 1000, sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS: 200,
                sc.GEN_AI_USAGE_OUTPUT_TOKENS: 100, sc.GEN_AI_USAGE_COST_AMOUNT: None}  # fmt: skip
        content = body_at_now("nova", nova)
        assert (
            httpx2.post(f"{follower.url}/v1/traces", content=content, headers=PROTOBUF, timeout=30).status_code == 200
        )
        calls = httpx2.get(f"{follower.url}/api/v1/calls", params=EVERYTHING, timeout=30).json()["calls"]
        assert [(c["cost_usd"], c["price_version"]) for c in calls] == [("0.002500000", version)]
    finally:
        for collector in collectors:
            collector.terminate()
        server.stop()


def body_at_now(tag: str, attributes: dict[str, Any]) -> bytes:
    return body(tag, 1, start_ns=time.time_ns(), **attributes)
