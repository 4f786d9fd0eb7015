"""Time every query behind every dashboard page over N generated calls (default 10 million).

Rows are generated inside DuckDB (SQL over `range()`, in time order as ingest writes them) into a migrated
database file spanning 90 days, then each query function of the collector runs 5 times warm on a 30-day
window and the median is reported.

    python -m benchmarks.queries [--rows 10000000] [--db PATH]

The summary and the additive series read whole hours from the hourly rollup; "raw rows" lines time the same answer
from the raw calls alone (what every query read before migration 19), side by side.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb

from collector.query import exports, reads, reports
from collector.query.filters import Filters
from collector.store import rollups
from collector.store.file import Store

GENERATE = """
INSERT INTO llm_calls (trace_id, span_id, start_time, duration_ms, ttft_ms, service, environment, team, feature,
    end_user, operation, api_type, request_model, response_model, stream, status, error_type, http_status, attempts,
    input_tokens, cached_input_tokens, output_tokens, reasoning_tokens, cost_usd, cost_source, service_tier,
    ratelimit_limit_requests, ratelimit_remaining_requests, ratelimit_limit_tokens, ratelimit_remaining_tokens,
    request_id, source_dialect)
SELECT
    printf('%032x', i), printf('%016x', i),
    ?::TIMESTAMPTZ + to_milliseconds((i * (7776000000 // ?))::BIGINT),  -- arrival order, as ingest writes
    200 + (hash(i) % 3000), CASE WHEN i % 3 = 0 THEN 100 + hash(i * 3) % 900 END,
    ['support-bot', 'search-api', 'doc-summarizer', 'sales-assistant'][1 + i % 4], 'production',
    ['support', 'search', 'docs', 'sales', 'platform'][1 + i % 5], 'feature-' || (i % 13),
    printf('%032x', i % 400), 'chat', 'chat_completions',
    ['gpt-4o-mini', 'gpt-4.1', 'gpt-5-mini', 'o3-mini', 'gpt-4o', 'text-embedding-3-small'][1 + i % 6],
    ['gpt-4o-mini-2024-07-18', 'gpt-4.1-2025-04-14', 'gpt-5-mini', 'o3-mini', 'gpt-4o',
     'text-embedding-3-small'][1 + i % 6],
    i % 3 = 0, CASE WHEN i % 50 = 0 THEN 'error' ELSE 'ok' END,
    CASE WHEN i % 50 = 0 THEN 'RateLimitError' END, CASE WHEN i % 50 = 0 THEN 429 ELSE 200 END,
    1 + (i % 97 = 0)::INTEGER, 100 + hash(i) % 4000, (hash(i) % 4000) // 3, 10 + hash(i * 7) % 800, 0,
    ((100 + hash(i) % 4000) * 0.00000015 + (10 + hash(i * 7) % 800) * 0.0000006)::DECIMAL(18, 9), 'collector',
    'default', 10000, 10000 - i % 10000, 2000000, 2000000 - (i * 37) % 2000000, 'req_' || i, 'llmledger'
FROM range(?, ?) AS t(i)
"""


def generate(store_path: Path, rows: int, end: datetime) -> float:
    store = Store(store_path)
    con = store.reader()
    started = time.perf_counter()
    step = 2_000_000
    for first in range(0, rows, step):
        con.execute(GENERATE, [end - timedelta(days=90), rows, first, min(first + step, rows)])
    rollups.rebuild(con)  # what ingest keeps up to date row by row
    con.execute("CHECKPOINT")
    elapsed = time.perf_counter() - started
    con.close()
    store.close()
    return elapsed


def timed(run: Callable[[], Any], repeats: int = 5) -> float:
    run()  # warm
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples) * 1000


def page_queries(con: duckdb.DuckDBPyConnection, end: datetime) -> dict[str, Callable[[], Any]]:
    """Each query behind a dashboard page, by name, run on `con`; windows end at `end` (30 days unless named)."""
    window = Filters(start=end - timedelta(days=30), end=end)
    day = Filters(start=end - timedelta(days=1), end=end)
    team = Filters(start=end - timedelta(days=30), end=end, equals={"team": ["search"]})
    return {
        "summary 30d": lambda: reads.summary(con, window),
        "summary 30d, team filter": lambda: reads.summary(con, team),
        "summary 24h": lambda: reads.summary(con, day),
        "summary 30d, raw rows only": lambda: reads.summary(con, window, use_rollup=False),
        "timeseries cost by model 1h": lambda: reads.timeseries(con, window, "cost_usd", "1h", "model"),
        "timeseries cost by model 1h, raw rows": lambda: reads.timeseries(
            con, window, "cost_usd", "1h", "model", use_rollup=False
        ),
        "timeseries requests 1h": lambda: reads.timeseries(con, window, "requests", "1h", None),
        "timeseries p95 latency by model 1h": lambda: reads.timeseries(con, window, "latency_p95_ms", "1h", "model"),
        "timeseries ttft p95 1h": lambda: reads.timeseries(con, window, "ttft_p95_ms", "1h", None),
        "timeseries error rate by type 1h": lambda: reads.timeseries(con, window, "error_rate", "1h", "error_type"),
        "timeseries error rate by type, raw rows": lambda: reads.timeseries(
            con, window, "error_rate", "1h", "error_type", use_rollup=False
        ),
        "timeseries retries 1h": lambda: reads.timeseries(con, window, "retried_requests", "1h", "model"),
        "timeseries headroom 1h": lambda: reads.timeseries(con, window, "ratelimit_headroom_requests_pct", "1h", None),
        "breakdown by team": lambda: reports.breakdown(con, window, "team"),
        "breakdown by end user (top 20)": lambda: reports.breakdown(con, window, "end_user"),
        "latency histogram": lambda: reports.latency_histogram(con, window, "duration_ms", 30),
        "calls page (newest 50)": lambda: reads.calls(con, window, 50),
        "finance CSV by day": lambda: "".join(exports.export_csv(con, window, "finance", "day")),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--db", type=Path, default=None, help="reuse or create this file (default: a temp file)")
    args = parser.parse_args()
    end = datetime.now(tz=UTC).replace(microsecond=0)
    folder = tempfile.TemporaryDirectory()
    path = args.db or Path(folder.name) / "queries.duckdb"
    if not path.exists():
        print(f"generated {args.rows:,} calls in {generate(path, args.rows, end):.1f} s")
    store = Store(path)
    con = store.reader()
    cases = page_queries(con, end)
    print(f"{'query (30-day window unless said)':<40}{'median ms':>10}")
    for name, run in cases.items():
        print(f"{name:<40}{timed(run):>10.1f}")
    store.close()
    folder.cleanup()


if __name__ == "__main__":
    main()
