"""What the next order of magnitude costs: ingest rate and page time on stores of 1 M, 10 M and 100 M calls.

For every store size this runs the two benchmarks a user would run by hand and puts their figures in one table:
- `benchmarks/ingest.py --http-only --db <store>`: a real collector, started on a copy of the store, takes
  `--spans` new spans over OTLP/HTTP (ack after commit, the ingest pool at its default), next to the minimal loop
  in the same run;
- `benchmarks/pages.py --db <copy> --window W`: every dashboard page in real Chromium, first visit of a cold
  server and redrawn after the dashboard's caches expire.

A store is a file given as `--store SIZE=PATH` (never written: each benchmark works on a copy) or, for a size
without one, generated like `benchmarks/queries.py` does (90 days of calls ending now) into a temporary folder.

    python -m benchmarks.growth [--sizes 1000000,10000000,100000000] [--store 10000000=PATH ...]
                                [--window 30d] [--spans 100000] [--rounds 1] [--work-dir DIR]
"""

from __future__ import annotations

import argparse
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.queries import generate  # noqa: E402

MINIMAL = re.compile(r"^minimal loop .*: ([\d,]+) spans/s", re.MULTILINE)
POOL_ON = re.compile(r"^collector, ingest pool on: .*?: ([\d,]+) spans/s = ([\d.]+) x", re.MULTILINE)
PEAK_RSS = re.compile(r"collector's peak RSS ([\d,]+) MB")
PAGE_ROW = re.compile(r"^(\S.*?)\s+([\d.]+)\s+([\d.]+)$", re.MULTILINE)


@dataclass
class Growth:
    calls: int
    file_gb: float
    minimal: float
    ingest: float
    ratio: float
    first_visit: float
    redraws: dict[str, float]
    peak_rss_mb: float


def run(module: str, *options: str) -> str:
    """Run `python -m module options`, echo its output as it comes, return it all."""
    command = [sys.executable, "-m", module, *options]
    print("$", " ".join(command[1:]), flush=True)
    process = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
    sys.stdout.write(process.stdout)
    if process.returncode != 0:
        raise RuntimeError(f"{module} failed ({process.returncode}):\n{process.stderr[-4000:]}")
    return process.stdout


def copy_store(store: Path, into: Path) -> Path:
    into.unlink(missing_ok=True)
    shutil.copyfile(store, into)
    if (wal := store.with_name(store.name + ".wal")).exists():
        shutil.copyfile(wal, into.with_name(into.name + ".wal"))
    return into


def number(text: str) -> float:
    return float(text.replace(",", ""))


def measure(calls: int, store: Path, work: Path, args: argparse.Namespace) -> Growth:
    ingest = run("benchmarks.ingest", "--http-only", "--db", str(store), "--spans", str(args.spans),
                 "--rounds", str(args.rounds))  # fmt: skip
    pool_on = POOL_ON.search(ingest)
    minimal = MINIMAL.search(ingest)
    if pool_on is None or minimal is None:
        raise RuntimeError("benchmarks.ingest printed no rates")
    copy = copy_store(store, work / "pages.duckdb")
    try:
        pages = run("benchmarks.pages", "--db", str(copy), "--window", args.window)
    finally:
        copy.unlink(missing_ok=True)
        copy.with_name(copy.name + ".wal").unlink(missing_ok=True)
    rows = {name.strip(): (number(first), number(again)) for name, first, again in PAGE_ROW.findall(pages)}
    if not rows:
        raise RuntimeError("benchmarks.pages printed no pages")
    rss = PEAK_RSS.search(pages)
    return Growth(
        calls=calls,
        file_gb=store.stat().st_size / 1e9,
        minimal=number(minimal.group(1)),
        ingest=number(pool_on.group(1)),
        ratio=float(pool_on.group(2)),
        first_visit=next(iter(rows.values()))[0],
        redraws={name: again for name, (_, again) in rows.items()},
        peak_rss_mb=number(rss.group(1)) if rss else float("nan"),
    )


def table(results: list[Growth], window: str) -> str:
    lines = [
        f"{'calls':>13} {'file GB':>8} {'ingest/s':>9} {'x loop':>7} {'loop/s':>8} "
        f"{'cold first s':>13} {'redraw median s':>16} {'slowest redraw':>26} {'peak RSS MB':>12}",
    ]
    for result in results:
        slowest = max(result.redraws, key=result.redraws.__getitem__)
        lines.append(
            f"{result.calls:>13,} {result.file_gb:>8.2f} {result.ingest:>9,.0f} {result.ratio:>7.2f} "
            f"{result.minimal:>8,.0f} {result.first_visit:>13.2f} {statistics.median(result.redraws.values()):>16.2f} "
            f"{f'{slowest} {result.redraws[slowest]:.2f}':>26} {result.peak_rss_mb:>12,.0f}"
        )
    lines.append(f"(pages: the sidebar's range {window}; ingest: the pool at its default, ack after commit)")
    return "\n".join(lines)


def parse_store(text: str) -> tuple[int, Path]:
    size, _, path = text.partition("=")
    store = Path(path)
    if not size.isdigit() or not store.is_file():
        raise argparse.ArgumentTypeError(f"--store wants SIZE=PATH to an existing file, got {text!r}")
    return int(size), store


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1000000,10000000,100000000", help="store sizes in calls, comma-separated")
    parser.add_argument("--store", type=parse_store, action="append", default=[], help="SIZE=PATH of an existing store")
    parser.add_argument("--window", choices=["24h", "7d", "30d"], default="30d", help="the pages' sidebar range")
    parser.add_argument("--spans", type=int, default=100_000, help="spans ingested into each store")
    parser.add_argument("--rounds", type=int, default=1, help="ingest rounds per store (medians)")
    parser.add_argument("--work-dir", type=Path, default=None, help="where copies and generated stores go")
    args = parser.parse_args()
    given = dict(args.store)
    sizes = sorted({int(size) for size in args.sizes.split(",")} | set(given))
    with tempfile.TemporaryDirectory(dir=args.work_dir) as folder:
        work = Path(folder)
        results = []
        for calls in sizes:
            store = given.get(calls)
            if store is None:
                store = work / f"store-{calls}.duckdb"
                started = time.perf_counter()
                generate(store, calls, datetime.now(tz=UTC))
                print(f"generated {calls:,} calls in {time.perf_counter() - started:.0f} s", flush=True)
            results.append(measure(calls, store, work, args))
            if calls not in given:
                store.unlink()
        print()
        print(table(results, args.window))


if __name__ == "__main__":
    main()
