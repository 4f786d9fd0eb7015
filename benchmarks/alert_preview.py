"""Time an alert rule's preview (7 days, hourly, per group) over N generated calls in those 7 days.

Rows are generated inside DuckDB as benchmarks/queries.py does (its SQL, spread over 7 days instead of 90) into a
migrated database file; each rule's preview then runs 3 times warm and the median is reported. A reused database
(--db) is previewed as of its newest call. The requirement (issue 18): under 2 s at 10 million calls.

    python -m benchmarks.alert_preview [--rows 10000000] [--db PATH]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from benchmarks.queries import GENERATE
from collector.alerts.preview import preview
from collector.alerts.rules import parse_rule
from collector.store.file import Store

NINETY_DAYS_MS, SEVEN_DAYS_MS = "7776000000", "604800000"
RULES = {
    "cost 1h": {"metric": "cost", "window": "1h", "op": ">", "threshold": 5},
    "cost 24h by team": {"metric": "cost", "window": "24h", "op": ">", "threshold": 50, "group_by": "team"},
    "requests today by end user (top 50 of 400)": {"metric": "requests", "window": "day", "op": ">",
                                                   "threshold": 1000, "group_by": "end_user"},
    "error rate 5m by service": {"metric": "error_rate", "window": "5m", "op": ">", "threshold": 0.05,
                                 "group_by": "service"},
    "p95 latency 1h by model": {"metric": "latency_p95_ms", "window": "1h", "op": ">", "threshold": 3000,
                                "group_by": "model"},
    "p95 latency 24h (merged from hourly counts)": {"metric": "latency_p95_ms", "window": "24h", "op": ">",
                                                    "threshold": 3000},
    "p99 latency today by team": {"metric": "latency_p99_ms", "window": "day", "op": ">", "threshold": 3000,
                                  "group_by": "team"},
    "anomaly: requests by team, hour of week": {"kind": "anomaly", "metric": "requests", "group_by": "team"},
    "anomaly: cost, rolling median": {"kind": "anomaly", "metric": "cost", "baseline": "rolling_median"},
    "no data 30m by service": {"kind": "no_data", "window": "30m", "group_by": "service"},
}  # fmt: skip


def generate(path: Path, rows: int, end: datetime) -> float:
    store = Store(path)
    con = store.reader()
    started = time.perf_counter()
    sql = GENERATE.replace(NINETY_DAYS_MS, SEVEN_DAYS_MS)  # the same calls, 7 days of them
    for first in range(0, rows, 2_000_000):
        con.execute(sql, [end - timedelta(days=7), rows, first, min(first + 2_000_000, rows)])
    con.execute("CHECKPOINT")
    con.close()
    store.close()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--db", type=Path, default=None, help="reuse or create this database file")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        db = args.db or Path(folder) / "preview.duckdb"
        now = datetime.now(tz=UTC)
        if not db.exists():
            print(f"generated {args.rows:,} calls in {generate(db, args.rows, now):.1f} s", flush=True)
        store = Store(db)
        con = store.reader()
        try:
            if args.db is not None:
                (now,) = con.execute("SELECT max(start_time) + INTERVAL 1 SECOND FROM llm_calls").fetchone()
            for name, fields in RULES.items():
                rule = parse_rule({"name": name, **fields})
                preview(con, rule, now)  # warm
                samples = []
                for _ in range(3):
                    started = time.perf_counter()
                    preview(con, rule, now)
                    samples.append(time.perf_counter() - started)
                print(f"{name:48s} median {statistics.median(samples) * 1000:8.0f} ms", flush=True)
        finally:
            con.close()
            store.close()


if __name__ == "__main__":
    main()
