"""Lake mode against file mode: ingest spans/s, and the page queries' times on a compacted lake.

The same OTLP/HTTP protobuf bodies as `benchmarks/ingest.py` (default 200k spans in 512-span requests) are
posted by N concurrent senders, each waiting for its acknowledgement (sent after commit) before the next. The
default of 24 senders keeps over 10,000 spans in flight, as many exporting apps do: with fewer, each lake commit
waits its whole flush interval for rows that can't come (4 senders measured 3,217 spans/s on a lake, 0.28 of the
file's, every commit ~2,000 rows after 0.5 s), which measures the interval rather than the lake.

1. File: one collector on a DuckDB file (`--db`).
2. Lake, 1 collector: one collector on a fresh DuckLake (`--lake`, catalog in a throwaway PostgreSQL cluster,
   Parquet files in a temporary folder).
3. Lake, 2 collectors: two collectors side by side on another fresh lake, the senders split half to each
   directly (no proxy in between).

spans/s = spans sent / wall time from the first post to the last acknowledgement. Each run then checks that
every collector's /api/v1/summary over the data's time range counts the spans sent, and, with the collectors
stopped, that the stored rows hold each (trace_id, span_id) exactly once.

4. The 2-collector lake is compacted once (`collector.store.lake.compaction.compact`, from this process), then every
   query of `benchmarks/queries.py` runs on it and on the file from run 1 (same spans), median of 5 warm runs,
   through the store classes the collector's API reads with (in this process, no HTTP).

Needs PostgreSQL's server binaries (initdb, pg_ctl) for the catalog. Collector logs are scanned for warnings.

    python -m benchmarks.lake_ingest [--spans 200000] [--batch 512] [--senders 24]
"""

from __future__ import annotations

import argparse
import contextlib
import re
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.ingest import Window, data_range, make_bodies, post_all, span_count, summary_count  # noqa: E402
from benchmarks.queries import page_queries, timed  # noqa: E402
from collector.server import LAKE_FLUSH_S, LAKE_MIN_BATCH_ROWS  # noqa: E402
from collector.store.file import Store  # noqa: E402
from collector.store.lake.compaction import SNAPSHOT_GRACE, compact  # noqa: E402
from collector.store.lake.connect import LAKE  # noqa: E402
from collector.store.lake.store import LakeStore  # noqa: E402
from tests.lake_services import CollectorProcess, PostgresCluster  # noqa: E402

PROBLEM = re.compile(r"\b(WARNING|ERROR|CRITICAL)\b|Traceback")


@dataclass
class Run:
    mode: str
    spans_per_s: float
    retried: int
    counted: list[int]  # /api/v1/summary's `requests`, one per collector
    rows: int = 0
    distinct_keys: int = 0

    def verdict(self, sent: int) -> str:
        if all(count == sent for count in self.counted) and self.rows == self.distinct_keys == sent:
            return f"yes ({sent:,})"
        return (
            f"NO: sent {sent:,}, summary {' / '.join(f'{count:,}' for count in self.counted)}, "
            f"{self.rows:,} rows, {self.distinct_keys:,} distinct keys"
        )


def ingest(mode: str, collectors: list[CollectorProcess], bodies: list[bytes], senders: int, window: Window) -> Run:
    """Post the bodies, count what each collector reports, then stop the collectors."""
    try:
        elapsed, retried = post_all(bodies, [collector.url for collector in collectors], senders)
        counted = [summary_count(collector.url, window) for collector in collectors]
    finally:
        for collector in collectors:
            collector.terminate()
    return Run(mode, sum(map(span_count, bodies)) / elapsed, retried, counted)


def count_keys(run: Run, store: Store) -> None:
    """Rows and distinct (trace_id, span_id) in the store: a lake has no unique key to refuse a duplicate."""
    con = store.reader()
    try:
        run.rows, run.distinct_keys = con.execute(
            "SELECT count(*), count(DISTINCT (trace_id, span_id)) FROM llm_calls"
        ).fetchone()
    finally:
        con.close()


def live_files(store: LakeStore) -> int:
    """Data files in the lake's current snapshot (the rest on disk wait for cleanup)."""
    con = store.reader()
    try:
        (count,) = con.execute(
            f"SELECT count(*) FROM __ducklake_metadata_{LAKE}.ducklake_data_file WHERE end_snapshot IS NULL"
        ).fetchone()
    finally:
        con.close()
    return int(count)


def parquet_files(folder: Path) -> int:
    return sum(1 for _ in folder.rglob("*.parquet"))


def query_times(store: Store, end: datetime) -> dict[str, float]:
    con = store.reader()
    try:
        return {name: timed(run) for name, run in page_queries(con, end).items()}
    finally:
        con.close()


def log_problems(logs: list[Path]) -> list[str]:
    return [
        f"{path.name}: {line}"
        for path in logs
        for line in path.read_text(errors="replace").splitlines()
        if PROBLEM.search(line)
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--spans", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=512)
    parser.add_argument("--senders", type=int, default=24)
    args = parser.parse_args()
    if args.senders < 2:
        parser.error("--senders must be at least 2 (the 2-collector run gives half to each)")
    began = time.perf_counter()
    bodies = make_bodies(args.spans, args.batch)
    window = data_range(bodies)
    with tempfile.TemporaryDirectory(prefix="llmledger-lake-bench-") as temp, contextlib.ExitStack() as stack:
        folder = Path(temp)
        logs: list[Path] = []

        def start(name: str, options: list[str]) -> CollectorProcess:
            logs.append(folder / f"{name}.log")
            return stack.enter_context(CollectorProcess(options, log_path=logs[-1]))

        file_db = folder / "file.duckdb"
        file_run = ingest("file (DuckDB)", [start("file", ["--db", str(file_db)])], bodies, args.senders, window)
        file_store = Store(file_db)
        count_keys(file_run, file_store)
        file_store.close()

        pg = stack.enter_context(PostgresCluster())
        spec, data = f"postgres:{pg.create_database('lake1')}", str(folder / "lake1")
        # No compaction by the leader: it runs once, below, so the file counts before it are ingest's own.
        options = ["--lake", spec, "--data-path", data, "--compact-interval", "0"]
        one_run = ingest("lake, 1 collector", [start("lake1", options)], bodies, args.senders, window)
        store = LakeStore(spec, data)
        count_keys(one_run, store)
        store.close()

        spec, data = f"postgres:{pg.create_database('lake2')}", str(folder / "lake2")
        options = ["--lake", spec, "--data-path", data, "--compact-interval", "0"]
        collectors = [start(f"lake2-collector{number}", options) for number in (1, 2)]
        mode = "lake, 2 collectors (senders split half to each, no proxy)"
        two_run = ingest(mode, collectors, bodies, args.senders, window)
        store = LakeStore(spec, data)
        count_keys(two_run, store)
        files_before = parquet_files(Path(data))
        started = time.perf_counter()
        compaction = compact(store)
        compaction_s = time.perf_counter() - started
        files_after, files_live = parquet_files(Path(data)), live_files(store)
        lake_ms = query_times(store, window[1])
        store.close()
        file_store = Store(file_db)
        file_ms = query_times(file_store, window[1])
        file_store.close()
        problems = log_problems(logs)

    runs = [file_run, one_run, two_run]
    print(
        f"{args.spans:,} spans in {len(bodies)} requests of up to {args.batch}, {args.senders} senders, "
        f"each request acknowledged after its commit (a lake collector commits >= {LAKE_MIN_BATCH_ROWS:,} rows "
        f"or after {LAKE_FLUSH_S:g} s)\n"
    )
    print("| mode | spans/s | ratio to file mode | stored = sent |")
    print("|---|---:|---:|---|")
    for run in runs:
        ratio = run.spans_per_s / runs[0].spans_per_s
        print(f"| {run.mode} | {run.spans_per_s:,.0f} | {ratio:.2f} | {run.verdict(args.spans)} |")
    retried = {run.mode: run.retried for run in runs if run.retried}
    print(f"\nrequests retried after 503: {retried or 'none'}")
    print(
        f"\nParquet files in the 2-collector lake's data path: {files_before} before compaction, {files_after} after "
        f"({files_live} in the current snapshot; the replaced ones stay until cleanup, {SNAPSHOT_GRACE} later)"
    )
    print(f"compact() returned {compaction} in {compaction_s:.1f} s\n")
    print("| query (30-day window unless said; median of 5) | file ms | lake ms (after compaction) |")
    print("|---|---:|---:|")
    for name, ms in file_ms.items():
        print(f"| {name} | {ms:.1f} | {lake_ms[name]:.1f} |")
    print(f"\ncollector log lines at WARNING or above: {len(problems) or 'none'}")
    for line in problems[:20]:
        print(f"  {line}")
    print(f"\ntotal {time.perf_counter() - began:.0f} s")


if __name__ == "__main__":
    main()
