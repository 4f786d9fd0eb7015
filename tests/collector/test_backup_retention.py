"""Backup from a running collector under ingest, restore into a new file, and retention of raw calls."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from collector.api.auth import Tokens
from collector.store.backup import BackupError, restore
from llmledger import semconv as sc
from tests.collector_harness import RunningCollector
from tests.otlp_spans import chat_attributes, request_with

ROOT = Path(__file__).resolve().parents[2]
PROTOBUF = {"content-type": "application/x-protobuf"}
ADMIN = Tokens(ingest="ingest-b", read="read-b", admin="admin-b")
RULE = {"name": "budget", "metric": "cost", "window": "day", "op": ">", "threshold": 5, "channels": []}
NOW_NS = time.time_ns()
DAY_NS = 86_400 * 1_000_000_000


def body(prefix: str, count: int, start_ns: int, service: str = "checkout") -> bytes:
    spans = [chat_attributes(**{sc.REQUEST_ID: f"{prefix}_{index}"}) for index in range(count)]
    return request_with(spans, service=service, start_ns=start_ns).SerializeToString()


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def guarded(tmp_path: Path) -> Iterator[RunningCollector]:
    running = RunningCollector(tmp_path / "live.duckdb", tokens=ADMIN)
    for day in range(3):
        answer = running.http.post(
            "/v1/traces", content=body(f"d{day}", 200, NOW_NS - day * DAY_NS), headers={**PROTOBUF, **auth("ingest-b")}
        )
        assert answer.status_code == 200
    assert running.http.post("/api/v1/alert-rules", json=RULE, headers=auth("admin-b")).status_code == 201
    yield running
    running.stop()


def test_backup_under_ingest_then_restore_with_the_cli(guarded: RunningCollector, tmp_path: Path) -> None:
    stop = threading.Event()
    sent = 0

    def keep_sending() -> None:
        nonlocal sent
        while not stop.is_set():
            request = body(f"live{sent}", 50, NOW_NS)
            answer = guarded.http.post("/v1/traces", content=request, headers={**PROTOBUF, **auth("ingest-b")})
            assert answer.status_code == 200
            sent += 1

    sender = threading.Thread(target=keep_sending)
    sender.start()
    try:
        time.sleep(0.3)
        env = {**os.environ, "LLMLEDGER_ADMIN_TOKEN": "admin-b"}
        command = [sys.executable, "-m", "llmledger_cli", "backup", "--api", guarded.url, "--to", str(tmp_path / "bk")]
        result = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)
    finally:
        stop.set()
        sender.join()
    assert result.returncode == 0, result.stderr
    assert f"backup written to {tmp_path / 'bk'}" in result.stdout
    assert sent > 0
    manifest_rows = json.loads((tmp_path / "bk" / "llmledger-backup.json").read_text())["rows"]
    # A consistent snapshot: whole requests only, and the rollup agrees with the raw calls it was taken with.
    assert (manifest_rows["llm_calls"] - 600) % 50 == 0
    assert manifest_rows["llm_calls"] >= 600
    assert manifest_rows["alert_rules"] == 1

    moved = tmp_path / "elsewhere" / "bk"
    shutil.copytree(tmp_path / "bk", moved)  # a backup is restorable from wherever it was copied to
    db = tmp_path / "restored.duckdb"
    command = [sys.executable, "-m", "llmledger_cli", "restore", "--db", str(db), "--from", str(moved)]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM llm_calls").fetchone()[0] == manifest_rows["llm_calls"]
        assert con.execute("SELECT sum(requests) FROM llm_calls_daily").fetchone()[0] == manifest_rows["llm_calls"]
        snapshot_cost = con.execute("SELECT sum(cost_usd) FROM llm_calls").fetchone()[0]
        assert con.execute("SELECT sum(cost_usd) FROM llm_calls_daily").fetchone()[0] == snapshot_cost
        # The readiness rollup is not in the backup (derived from the calls alone): the restore rebuilt it.
        assert "readiness_daily" not in manifest_rows
        assert con.execute("SELECT sum(calls) FROM readiness_daily").fetchone()[0] == manifest_rows["llm_calls"]
    restored = RunningCollector(db)
    try:
        (rule,) = restored.get("/api/v1/alert-rules")["rules"]
        assert rule["name"] == "budget"
        created = restored.http.post("/api/v1/alert-rules", json={**RULE, "name": "second"})
        assert created.json()["id"] > rule["id"]  # sequences continue after the restored ids
        assert restored.get("/api/v1/summary")["requests"] == manifest_rows["llm_calls"]
    finally:
        restored.stop()


def test_backup_and_restore_refuse_what_they_must(guarded: RunningCollector, tmp_path: Path) -> None:
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    for target, message in (
        ("relative/folder", "is not an absolute path"),
        (str(tmp_path / "full"), "is not an empty folder"),
    ):
        answer = guarded.http.post("/api/v1/backup", json={"to": target}, headers=auth("admin-b"))
        assert answer.status_code == 400
        assert message in answer.json()["error"]
    assert guarded.http.post("/api/v1/backup", json={"to": 7}, headers=auth("admin-b")).status_code == 400
    assert (
        guarded.http.post("/api/v1/backup", json={"to": str(tmp_path / "b")}, headers=auth("read-b")).status_code == 403
    )
    with pytest.raises(BackupError, match="not an llmledger backup"):
        restore(tmp_path / "new.duckdb", tmp_path / "full")
    answer = guarded.http.post("/api/v1/backup", json={"to": str(tmp_path / "ok")}, headers=auth("admin-b"))
    assert answer.status_code == 200
    existing = tmp_path / "existing.duckdb"
    duckdb.connect(str(existing)).close()
    with pytest.raises(BackupError, match="never overwrites"):
        restore(existing, tmp_path / "ok")
    (tmp_path / "ok" / "llm_calls.parquet").write_bytes(b"damaged")
    with pytest.raises(BackupError, match="loading the backup failed"):
        restore(tmp_path / "from-damaged.duckdb", tmp_path / "ok")
    assert not (tmp_path / "from-damaged.duckdb").exists()


def test_a_backup_of_an_earlier_version_restores(guarded: RunningCollector, tmp_path: Path) -> None:
    """Earlier versions wrote DuckDB's EXPORT DATABASE (schema.sql, load.sql, a Parquet file per table)."""
    old = tmp_path / "old-backup"
    con = guarded.collector.store.reader()
    try:
        con.execute(f"EXPORT DATABASE '{old}' (FORMAT parquet, COMPRESSION zstd)")
        names = [name for (name,) in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()]
        rows = {name: con.execute(f'SELECT count(*) FROM "{name}"').fetchone()[0] for name in names}
    finally:
        con.close()
    assert (old / "schema.sql").is_file()
    manifest = {"format": 1, "layout": "export", "migrations": [], "rows": rows}
    (old / "llmledger-backup.json").write_text(json.dumps(manifest))
    counts = restore(tmp_path / "from-old.duckdb", old)
    assert counts["llm_calls"] == rows["llm_calls"] > 0
    assert counts["alert_rules"] == rows["alert_rules"] == 1


def finance_days(collector: RunningCollector) -> dict[str, int]:
    text = collector.http.get("/api/v1/export.csv", params={"kind": "finance"}).text
    days: dict[str, int] = {}
    for row in csv.DictReader(io.StringIO(text)):
        days[row["period"]] = days.get(row["period"], 0) + int(row["requests"])
    return days


def test_retention_deletes_old_raw_calls_and_keeps_rollups_and_alerts(tmp_path: Path) -> None:
    db = tmp_path / "ledger.duckdb"
    first = RunningCollector(db)
    for day in (0, 1, 5, 40):
        answer = first.http.post("/v1/traces", content=body(f"r{day}", 10, NOW_NS - day * DAY_NS), headers=PROTOBUF)
        assert answer.status_code == 200
    first.http.post("/api/v1/alert-rules", json=RULE)
    finance_before = finance_days(first)
    months = sorted({datetime.fromtimestamp((NOW_NS - day * DAY_NS) / 1e9, UTC).strftime("%Y-%m") for day in (5, 40)})
    chargeback_before = [first.get("/api/v1/chargeback", month=month) for month in months]
    assert all(Decimal(report["total_usd"]) > 0 for report in chargeback_before)
    first.stop()

    kept = RunningCollector(db, "--retention-days", "3")  # the first pass runs at start
    try:
        today = datetime.now(tz=UTC).date()
        oldest_kept = today - timedelta(days=3)
        deadline = time.monotonic() + 30
        while kept.get("/api/v1/summary")["requests"] != 20 and time.monotonic() < deadline:
            time.sleep(0.1)
        calls = kept.get("/api/v1/calls", limit="1000")["calls"]
        assert len(calls) == 20
        assert min(datetime.fromisoformat(call["start_time"]).date() for call in calls) >= oldest_kept
        assert finance_days(kept) == finance_before  # spend by day outlives the raw calls
        # So does a month's chargeback: the days retention emptied come from the daily rollup, the rest by the hour.
        assert [kept.get("/api/v1/chargeback", month=month) for month in months] == chargeback_before
        assert len(kept.get("/api/v1/alert-rules")["rules"]) == 1
        assert "llmledger_rows_deleted_by_retention_total 20" in kept.http.get("/metrics").text
        assert kept.collector.retention.run_once(datetime.now(tz=UTC)) == 0  # nothing twice
        # The readiness rollup goes with the raw calls: the checklist judges the calls there are.
        reader = kept.collector.store.reader()
        try:
            days = reader.execute("SELECT min(day), sum(calls) FROM readiness_daily").fetchone()
        finally:
            reader.close()
        assert days[0] >= oldest_kept
        assert days[1] == 20
    finally:
        kept.stop()
