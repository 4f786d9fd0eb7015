"""What the collector does at start for speed: DuckDB's memory limit from the machine, and warming the queries of
the dashboard's first visit."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from collector.query.warm import Warmup, first_visit
from collector.store import memory
from tests.collector.test_rollups import post, spans_for
from tests.collector_harness import RunningCollector
from tests.otlp_spans import request_with


def test_a_memory_limit_is_a_size_or_a_share_of_the_machine() -> None:
    assert memory.resolve("4GB") == "4GB"
    assert memory.resolve(" 512 MiB ") == "512MiB"
    half = memory.machine_bytes() // 2 // (1024 * 1024)
    assert memory.resolve(None) == f"{half}MiB"
    assert memory.resolve("25%") == f"{int(memory.machine_bytes() * 0.25) // (1024 * 1024)}MiB"
    for wrong in ("lots", "0%", "150%", "4 parsecs"):
        with pytest.raises(memory.MemoryLimitError, match="--memory-limit"):
            memory.resolve(wrong)


def test_the_collector_sets_duckdbs_memory_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(memory.ENV, "300MiB")
    running = RunningCollector(tmp_path / "env.duckdb")
    try:
        (limit,) = running.collector.store.reader().execute("SELECT current_setting('memory_limit')").fetchone()
        assert limit == "300.0 MiB"
    finally:
        running.stop()
    running = RunningCollector(tmp_path / "option.duckdb", "--memory-limit", "1GiB")  # the option wins
    try:
        (limit,) = running.collector.store.reader().execute("SELECT current_setting('memory_limit')").fetchone()
        assert limit == "1.0 GiB"
    finally:
        running.stop()


def test_warming_runs_every_read_of_the_first_visit(tmp_path: Path) -> None:
    running = RunningCollector(tmp_path / "ledger.duckdb")
    try:
        post(running, request_with(spans_for(1), start_ns=int(datetime.now(UTC).timestamp() * 1e9) - 10**12)
             .SerializeToString())  # fmt: skip
        store, rates = running.collector.store, running.collector.price_book.rates
        con = store.reader()
        answers = [read(con) for read in first_visit(datetime.now(UTC), rates)]
        assert answers[0]["calls"]  # the newest call
        assert answers[1]["values"] == ["checkout"]  # the sidebar's services
        assert {group["group"] for group in answers[6]["groups"]} == {"gpt-4o-mini", "gpt-4.1", "mystery-model-x"}
        assert answers[7]["requests"] == 8  # the last 24 hours
        warmup = Warmup(store.reader, rates)  # and on its own thread, stopped whether or not it has finished
        warmup.start()
        warmup.stop()
    finally:
        running.stop()
