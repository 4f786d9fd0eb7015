"""Every dashboard page on a compacted lake holding the calls of a big file store, timed as `benchmarks/pages.py` does.

A throwaway PostgreSQL cluster holds the lake's catalog and a local folder its Parquet files. The lake is made
by the collector's own code (`LakeStore`: every migration), then filled with the file store's calls in one
`INSERT ... SELECT` (the file is attached read-only and never written), its rollups rebuilt from those calls
(`rollups.rebuild`, as `llmledger reprice --rebuild-rollups` would) and compacted once
(`collector.store.lake.compaction.compact`). A collector on the lake (`--lake ... --data-path ...`, no compaction
of its own) and the dashboard then serve the pages to Debian's Chromium: first visit of a cold server, and
redrawn after the dashboard's caches expire, for each window.

    python -m benchmarks.lake_pages --db PATH [--window 24h|7d|30d|all] [--work-dir DIR]
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.pages import WINDOWS, measure  # noqa: E402
from collector.store import rollups  # noqa: E402
from collector.store.lake.compaction import compact  # noqa: E402
from collector.store.lake.store import LakeStore  # noqa: E402
from tests.lake_services import PostgresCluster  # noqa: E402


def fill(store: LakeStore, source: Path) -> int:
    """Copy every call of the file store at `source` into the lake and rebuild the rollups; returns the calls."""
    attached = store.reader()  # attached outside the write: a transaction can't detach what it wrote from
    attached.execute(f"ATTACH '{source}' AS source_file (READ_ONLY)")
    try:
        with store.calls_transaction() as con:
            con.execute("INSERT INTO llm_calls BY NAME SELECT * FROM source_file.main.llm_calls")
            rollups.rebuild(con)
            (calls,) = con.execute("SELECT count(*) FROM llm_calls").fetchone()
    finally:
        attached.execute("DETACH source_file")
        attached.close()
    return int(calls)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", type=Path, required=True, help="the file store whose calls fill the lake (read only)")
    parser.add_argument("--window", choices=[*WINDOWS, "all"], default="all", help="the sidebar's time range")
    parser.add_argument("--work-dir", type=Path, default=None, help="where the lake's Parquet files go")
    args = parser.parse_args()
    if not args.db.is_file():
        parser.error(f"--db {args.db} is not a file")
    with tempfile.TemporaryDirectory(dir=args.work_dir) as folder, contextlib.ExitStack() as stack:
        pg = stack.enter_context(PostgresCluster())
        spec, data = f"postgres:{pg.create_database('pages')}", str(Path(folder) / "lake")
        started = time.perf_counter()
        store = LakeStore(spec, data)
        try:
            calls = fill(store, args.db.resolve())
            filled = time.perf_counter() - started
            started = time.perf_counter()
            compaction = compact(store)
        finally:
            store.close()
        parquet = list(Path(data).rglob("*.parquet"))
        print(
            f"lake filled with {calls:,} calls from {args.db} in {filled:.0f} s; compacted in "
            f"{time.perf_counter() - started:.0f} s ({compaction}); {len(parquet)} Parquet files, "
            f"{sum(path.stat().st_size for path in parquet) / 1e9:.2f} GB",
            flush=True,
        )
        store_options = ["--lake", spec, "--data-path", data, "--compact-interval", "0"]
        for window in WINDOWS if args.window == "all" else (args.window,):
            measure(store_options, window)


if __name__ == "__main__":
    main()
