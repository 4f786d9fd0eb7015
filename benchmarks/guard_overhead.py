"""The guard's added time per call on the app's thread, all three parts on (an enforced budget that covers the
call, the circuit breaker, the pacer), next to the same wrapper without the guard, in one run.

Both use the same in-process fake (`httpx2.MockTransport`, from benchmarks/wrapper_overhead.py); blocks of calls
alternate guard off / on so machine noise hits both alike. Spans go to a real SDK provider that drops them. The
budget comes from a snapshot given to the guard as the collector's endpoint would send it (no network).

    python benchmarks/guard_overhead.py [--calls 2000]
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time
from datetime import UTC, datetime

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

import llmledger
from benchmarks.wrapper_overhead import FAKE_IS_OPENAI, DropExporter, make_client
from llmledger.guard.budgets import parse_budgets

MESSAGES = [{"role": "user", "content": "Summarise the ledger for today in one sentence."}]
BLOCKS = 10


def budgets_now() -> dict:
    now = datetime.now(tz=UTC)
    start = datetime(now.year, now.month, now.day, tzinfo=UTC).isoformat()
    budget = {"id": 1, "name": "bench", "window": "day", "window_start": start, "filters": {"team": ["bench"]},
              "limit_usd": "1000000", "spent_usd": "0", "action": "block", "downgrade_to": None}  # fmt: skip
    return {"as_of": now.isoformat(), "budgets": [budget]}


def timed_calls(client, n: int) -> tuple[list[int], list[int]]:
    """Wall time and the app thread's own CPU time per call: the finisher thread builds spans meanwhile, and the
    wall time also holds its turns at the GIL, whichever call it lands in."""
    wall, cpu = [], []
    with llmledger.attributes(team="bench"):
        for _ in range(n):
            start, start_cpu = time.perf_counter_ns(), time.thread_time_ns()
            client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, max_tokens=100)
            cpu.append(time.thread_time_ns() - start_cpu)
            wall.append(time.perf_counter_ns() - start)
    return wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000)
    args = parser.parse_args()
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(DropExporter()))
    client = make_client()
    per_block = max(args.calls // BLOCKS, 1)
    off: tuple[list[int], list[int]] = ([], [])
    on: tuple[list[int], list[int]] = ([], [])
    settings = llmledger.GuardSettings(pace=True, poll_interval_s=3600.0, collector_url="http://127.0.0.1:9")
    gc.disable()
    for _ in range(BLOCKS):
        with llmledger.instrument(client, tracer_provider=provider, providers=FAKE_IS_OPENAI):
            _extend(off, timed_calls(client, per_block))
        llmledger.flush()
        with llmledger.instrument(client, tracer_provider=provider, providers=FAKE_IS_OPENAI, guard=settings) as handle:
            assert handle.guard is not None
            assert handle.guard.book is not None
            handle.guard.book.apply(*parse_budgets(budgets_now()))
            _extend(on, timed_calls(client, per_block))
        llmledger.flush()
        gc.collect()
    gc.enable()
    print(f"calls per side: {len(off[0])}")
    for label, index in (("wall time", 0), ("app-thread CPU", 1)):
        median_off, median_on = statistics.median(off[index]), statistics.median(on[index])
        print(
            f"{label:15} median per call: wrapper {median_off / 1000:7.1f} µs, wrapper + guard {median_on / 1000:7.1f} "
            f"µs; guard added {(median_on - median_off) / 1000:6.1f} µs (ratio {median_on / median_off:.2f})"
        )


def _extend(into: tuple[list[int], list[int]], measured: tuple[list[int], list[int]]) -> None:
    into[0].extend(measured[0])
    into[1].extend(measured[1])


if __name__ == "__main__":
    main()
