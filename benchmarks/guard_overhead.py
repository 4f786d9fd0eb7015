"""The guard's added time per call on the app's thread, all three parts on (an enforced budget that covers the
call, the circuit breaker, the pacer), next to the same wrapper without the guard, in one run; and the guard's own
time, measured around its two calls on the app's thread (`admit` before the request, `release` after), in those
calls and alone in a loop (the same two calls on a recorded chat response, no SDK, no other thread): on a noisy
machine the difference of two medians of ~1 ms calls wanders by tens of µs, the loop's figure doesn't.

Both use the same in-process fake (`httpx2.MockTransport`, from benchmarks/wrapper_overhead.py); blocks of calls
alternate guard off / on (each side first in every other pair) so machine noise hits both alike, and the whole-call
figure is also given as the median of the block pairs' differences. The guard's own time is measured in blocks of
their own: the clocks around its two calls would otherwise be counted as the guard's in the whole calls. Spans go to a
real SDK provider that drops them. The budget comes from a snapshot given to the guard as the collector's endpoint
would send it (no network).

    python -m benchmarks.guard_overhead [--calls 2000]
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time
import types
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

import llmledger
from benchmarks.wrapper_overhead import FAKE_IS_OPENAI, DropExporter, make_client
from llmledger import semconv as sc
from llmledger.guard.budgets import parse_budgets
from llmledger.guard.guard import Guard
from llmledger.wrapper.call import CallRecorder
from llmledger.wrapper.extract import ENDPOINTS

MESSAGES = [{"role": "user", "content": "Summarise the ledger for today in one sentence."}]
BLOCKS = 20


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
    own: list[int] = []  # the app thread's CPU in admit and in release, one entry each per call
    off: tuple[list[int], list[int]] = ([], [])
    on: tuple[list[int], list[int]] = ([], [])
    differences: tuple[list[float], list[float]] = ([], [])  # per block pair: median on - median off
    settings = llmledger.GuardSettings(pace=True, poll_interval_s=3600.0, collector_url="http://127.0.0.1:9")
    gc.disable()
    for block in range(BLOCKS):
        measured = {}
        for guarded in (False, True) if block % 2 == 0 else (True, False):  # each side goes first as often
            if guarded:
                measured[guarded] = guarded_block(client, provider, settings, per_block, own)
            else:
                with llmledger.instrument(client, tracer_provider=provider, providers=FAKE_IS_OPENAI):
                    measured[guarded] = timed_calls(client, per_block)
            llmledger.flush()
            gc.collect()
        _extend(off, measured[False])
        _extend(on, measured[True])
        for index in (0, 1):
            differences[index].append(
                statistics.median(measured[True][index]) - statistics.median(measured[False][index])
            )
    gc.enable()
    print(f"calls per side: {len(off[0])}")
    for label, index in (("wall time", 0), ("app-thread CPU", 1)):
        median_off, median_on = statistics.median(off[index]), statistics.median(on[index])
        print(
            f"{label:15} median per call: wrapper {median_off / 1000:7.1f} µs, wrapper + guard {median_on / 1000:7.1f} "
            f"µs; guard added {(median_on - median_off) / 1000:6.1f} µs (ratio {median_on / median_off:.2f}; "
            f"median of the {BLOCKS} block pairs' differences {statistics.median(differences[index]) / 1000:.1f} µs)"
        )
    per_call = [admit + release for admit, release in zip(own[::2], own[1::2], strict=True)]
    print(
        f"the guard's own app-thread CPU per call (admit + release): median {statistics.median(per_call) / 1000:.1f} "
        f"µs, {100 * statistics.median(per_call) / statistics.median(on[1]):.1f}% of a guarded call"
    )
    alone = guard_alone(settings, client, args.calls * 4)
    print(f"the same two calls alone in a loop: median {statistics.median(alone) / 1000:.1f} µs per call")


def guarded_block(client: Any, provider: TracerProvider, settings: llmledger.GuardSettings, n: int,
                  own: list[int]) -> tuple[list[int], list[int]]:  # fmt: skip
    """n guarded calls, timed whole; then n more with the guard's two calls timed (into `own`): the clocks around
    them cost the call ~2 µs, so they stay out of the whole-call comparison."""
    with llmledger.instrument(client, tracer_provider=provider, providers=FAKE_IS_OPENAI, guard=settings) as handle:
        assert handle.guard is not None
        assert handle.guard.book is not None
        handle.guard.book.apply(*parse_budgets(budgets_now()))
        measured = timed_calls(client, n)
        handle.guard.admit = _timed(handle.guard.admit, own)  # type: ignore[method-assign]
        handle.guard.release = _timed(handle.guard.release, own)  # type: ignore[method-assign]
        timed_calls(client, n)
    return measured


def guard_alone(settings: llmledger.GuardSettings, client: Any, n: int) -> list[int]:
    """`admit` and `release` of one chat call, with a response and rate-limit headers the fake recorded, n times;
    each call's reservation settled after it (the finisher's part, not timed)."""
    guard = Guard(settings, {sc.SERVICE_NAME: "bench"})
    assert guard.book is not None
    guard.book.apply(*parse_budgets(budgets_now()))
    guard.start = lambda: None  # type: ignore[method-assign]  # the snapshot above stands for the collector's
    body = {"model": "gpt-4o-mini", "messages": MESSAGES, "max_tokens": 100}
    raw = client.chat.completions.with_raw_response.create(**body)
    result, headers, endpoint = raw.parse(), raw.headers, ENDPOINTS["/chat/completions"]
    tracer = TracerProvider().get_tracer("bench")
    options = types.SimpleNamespace(max_retries=None, timeout=None)  # the SDK's request options, none overridden
    times = []
    with llmledger.attributes(team="bench"):
        for _ in range(n):
            call = CallRecorder(tracer, endpoint, client, options, body, False, FAKE_IS_OPENAI)
            call.result = result
            start = time.thread_time_ns()
            ticket, _wait, _model = guard.admit(call.attrs, body, "chat", client, FAKE_IS_OPENAI, call.scope)
            guard.release(ticket, call, headers)
            times.append(time.thread_time_ns() - start)
            guard.settle(ticket)
    return times[n // 10 :]


def _timed(method: Callable[..., Any], into: list[int]) -> Callable[..., Any]:
    def timed(*args: Any, **kwargs: Any) -> Any:
        start = time.thread_time_ns()
        try:
            return method(*args, **kwargs)
        finally:
            into.append(time.thread_time_ns() - start)

    return timed


def _extend(into: tuple[list[int], list[int]], measured: tuple[list[int], list[int]]) -> None:
    into[0].extend(measured[0])
    into[1].extend(measured[1])


if __name__ == "__main__":
    main()
