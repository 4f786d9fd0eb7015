"""The readiness scorecard (24 h, 7-day and 30-day windows) and its 30-day history over N generated calls, before
and after the readiness rollup (migration 18), side by side in one run.

Each side runs in its own processes, reading its database read-only: "before" is another checkout's code (e.g. the
main branch's, whose checklist reads the raw calls) on a database without migration 18, "after" this checkout's on
a copy of it that this checkout's store opens first (migrating it: the time and peak RSS are printed). Per window
and round, a fresh process times the first scorecard after connecting (cold-ish: DuckDB's caches empty, the OS's
page cache warm), the median of 5 warm calls and of 5 warm histories (`--repeats`); the sides alternate, and the
medians of the rounds are printed with their ratio. Both sides score the same service over the same instants, so
their JSON must be identical: a digest of each is compared.

    python -m benchmarks.readiness --before-db before.duckdb --before-code /path/to/main --after-db after.duckdb \
        [--rounds 2] [--repeats 5] [--service support-bot]

Make the databases with `python -m benchmarks.queries --rows N --db before.duckdb` run from the before checkout,
then `cp before.duckdb after.duckdb`. Progress goes to stderr.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb

ROOT = Path(__file__).resolve().parents[1]
WINDOWS = {"24h": timedelta(days=1), "7d": timedelta(days=7), "30d": timedelta(days=30)}

# What one side's process runs: only the checklist's public functions, which both sides have.
WORKER = """
import hashlib, json, resource, statistics, sys, time
from datetime import datetime, timedelta
import duckdb
from collector.readiness import checklist, model

db, service, end, seconds = sys.argv[1], sys.argv[2], datetime.fromisoformat(sys.argv[3]), float(sys.argv[4])
repeats = int(sys.argv[5])
con = duckdb.connect(db, read_only=True)  # as the store's reading cursor, without writing a byte
con.execute("SET TimeZone = 'UTC'")
scope = model.Scope(service, end - timedelta(seconds=seconds), end)
context = model.Context()

def timed(run):
    started = time.perf_counter()
    result = run()
    return (time.perf_counter() - started) * 1000, result

cold_ms, card = timed(lambda: checklist.scorecard(con, scope, context))
warm_ms = statistics.median(timed(lambda: checklist.scorecard(con, scope, context))[0] for _ in range(repeats))
today = end.replace(hour=0, minute=0, second=0, microsecond=0)
days = model.Scope(service, today + timedelta(days=1) - timedelta(days=30), today + timedelta(days=1))
points = checklist.history(con, days, context)
history_ms = statistics.median(timed(lambda: checklist.history(con, days, context))[0] for _ in range(repeats))

def digest(value):
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:12]

print(json.dumps({"cold_ms": cold_ms, "warm_ms": warm_ms, "history_ms": history_ms,
                  "card": digest(card), "history": digest(points), "score": card["score"],
                  "rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


MIGRATE = """
import json, resource, sys, time
from collector.store.file import Store

started = time.perf_counter()
Store(sys.argv[1]).close()
print(json.dumps({"seconds": time.perf_counter() - started,
                  "rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def side(code: Path, db: Path, service: str, end: datetime, window: timedelta, repeats: int) -> dict[str, float | str]:
    """One process of one side (its code first on sys.path: `python -c` puts the working directory there)."""
    argv = [sys.executable, "-c", WORKER, str(db), service, end.isoformat(), str(window.total_seconds()), str(repeats)]
    done = subprocess.run(argv, cwd=code, capture_output=True, text=True, check=True)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    print(f"  {code.name} {window}: {result}", file=sys.stderr, flush=True)
    return result


def migrations(db: Path) -> list[int]:
    with duckdb.connect(str(db), read_only=True) as con:
        return [number for (number,) in con.execute("SELECT id FROM _migrations ORDER BY id").fetchall()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before-db", type=Path, required=True)
    parser.add_argument("--before-code", type=Path, required=True, help="a checkout without migration 18")
    parser.add_argument("--after-db", type=Path, required=True)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--service", default="support-bot")
    parser.add_argument("--repeats", type=int, default=5, help="warm scorecards (and histories) per process")
    args = parser.parse_args()
    if 18 in migrations(args.before_db):
        parser.error("--before-db has migration 18 already: time the before side on a copy made without it")
    end = datetime.now(tz=UTC).replace(microsecond=0)
    done = subprocess.run([sys.executable, "-c", MIGRATE, str(args.after_db)], cwd=ROOT, capture_output=True,
                          text=True, check=True)  # fmt: skip
    migrated = json.loads(done.stdout.strip().splitlines()[-1])
    print(f"after's database opened (migrated if it lacked 18) in {migrated['seconds']:.1f} s, "
          f"peak RSS {migrated['rss_mib']:.0f} MiB")  # fmt: skip
    results: dict[tuple[str, str], list[dict[str, float | str]]] = {}
    for _ in range(args.rounds):
        for window_name, window in WINDOWS.items():
            for name, code, db in (("before", args.before_code, args.before_db), ("after", ROOT, args.after_db)):
                run = side(code, db, args.service, end, window, args.repeats)
                results.setdefault((window_name, name), []).append(run)
    print(f"{args.service}, windows ending {end:%Y-%m-%d %H:%M:%S} UTC; medians of {args.rounds} rounds (ms)")
    print(f"{'':<22}{'before':>10}{'after':>10}{'ratio':>8}  identical")
    for window_name in WINDOWS:
        before, after = results[(window_name, "before")], results[(window_name, "after")]
        for measure, label in (("cold_ms", "first after opening"), ("warm_ms", f"warm (median of {args.repeats})")):
            old = statistics.median(float(run[measure]) for run in before)
            new = statistics.median(float(run[measure]) for run in after)
            same = {run["card"] for run in before} == {run["card"] for run in after}
            print(
                f"{window_name + ' ' + label:<22}{old:>10.0f}{new:>10.0f}{new / old:>8.2f}  {'yes' if same else 'NO'}"
            )
    before, after = results[("30d", "before")], results[("30d", "after")]
    old = statistics.median(float(run["history_ms"]) for run in before)
    new = statistics.median(float(run["history_ms"]) for run in after)
    same = {run["history"] for run in before} == {run["history"] for run in after}
    print(f"{'history, 30 days':<22}{old:>10.0f}{new:>10.0f}{new / old:>8.2f}  {'yes' if same else 'NO'}")
    for name in ("before", "after"):
        peak = max(float(run["rss_mib"]) for (_, side_name), runs in results.items() if side_name == name
                   for run in runs)  # fmt: skip
        print(f"peak RSS of a {name} process: {peak:.0f} MiB")


if __name__ == "__main__":
    main()
