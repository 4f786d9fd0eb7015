"""Compaction of a lake, on the leader, every `--compact-interval` seconds.

Ingest writes one Parquet file per table per coalesced batch (the lake is attached without data inlining, see
lake_connect.attach); merging adjacent files keeps scans fast. Old snapshots are expired and the files no snapshot
needs any more are deleted after a grace period, so a query that began before a compaction can still read what it
started on. None of this takes the
writers' lock: DuckLake commits compaction like any other transaction, beside ingest and queries. Folding the
readiness rollup's delta rows (one set per ingest commit) into one row per key rewrites rows, so it does, briefly.
"""

from __future__ import annotations

import logging
import time

from collector.metrics import Metrics
from collector.store import hourly, latency_hourly, readiness_rollup
from collector.store.file import Store
from collector.store.lake.connect import LAKE

log = logging.getLogger("llmledger.collector")
SNAPSHOT_GRACE = "1 hour"  # queries and time travel shorter than this never lose their files


def compact(store: Store, metrics: Metrics | None = None) -> dict[str, int]:
    """One compaction pass; returns how many tables had files merged and how many old files were deleted."""
    started = time.perf_counter()
    with store.calls_transaction() as con:  # a short write under the writers' lock, unlike the rest
        folded = readiness_rollup.fold(con)
        hours_folded = hourly.fold(con)
        latency_hours_folded = latency_hourly.fold(con)
    con = store.reader()
    try:
        merged = len(con.execute(f"CALL ducklake_merge_adjacent_files('{LAKE}')").fetchall())
        con.execute(f"CALL ducklake_expire_snapshots('{LAKE}', older_than => now() - INTERVAL '{SNAPSHOT_GRACE}')")
        deleted = len(
            con.execute(
                f"CALL ducklake_cleanup_old_files('{LAKE}', older_than => now() - INTERVAL '{SNAPSHOT_GRACE}')"
            ).fetchall()
        )
    finally:
        con.close()
    seconds = time.perf_counter() - started
    if metrics is not None:
        metrics.observe("llmledger_lake_compaction_seconds", seconds)
    log.info(
        "lake compaction: files merged in %d tables, %d old files deleted, rollups folded on %d days (readiness) "
        "and %d hours (hourly), %d hours (latency) in %.1f s",
        merged, deleted, folded, hours_folded, latency_hours_folded, seconds,
    )  # fmt: skip
    return {
        "merged": merged,
        "deleted": deleted,
        "folded": folded,
        "hours_folded": hours_folded,
        "latency_hours_folded": latency_hours_folded,
    }
