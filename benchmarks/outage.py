"""The app's per-call latency with the collector down versus up: the spool must not slow the app.

Each scenario runs in a fresh process (`configure()` is once per process) that makes plain chat calls with
the real openai SDK to a fake OpenAI server on loopback, instrumented and configured as an app would be:
- up: `configure()` points at a live collector (`llmledger collector`, its own process);
- down: it points at a closed port, so every batch goes to the on-disk spool and the drain thread keeps
  retrying with backoff.
Scenarios alternate (up, down, up, down, ...) so machine noise hits both alike.

    python benchmarks/outage.py [--calls 2000] [--rounds 4]
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx2

from llmledger.testing.fake_openai import FakeOpenAI
from llmledger.testing.waiting import free_port, wait_until_ok

WARMUP = 200
MESSAGES = [{"role": "user", "content": "Say hi"}]


def app(base_url: str, endpoint: str, spool: Path, calls: int) -> None:
    """The measured process: prints its per-call latencies (ns) and the spool's state as JSON."""
    import openai

    import llmledger
    from llmledger.export.configure import spool_status

    llmledger.configure(endpoint=endpoint, service_name="outage-bench", spool_dir=spool)
    llmledger.instrument(providers={"127.0.0.1": "openai"})  # the loopback fake stands in for OpenAI
    client = openai.OpenAI(api_key="sk-proj-bench", base_url=base_url)
    for _ in range(WARMUP):
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    gc.collect()
    clock = time.perf_counter_ns
    latencies = []
    for _ in range(calls):
        start = clock()
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        latencies.append(clock() - start)
    llmledger.flush(timeout=10)
    status = spool_status()
    print(json.dumps({"latencies": latencies, "spooled": status.spooled_spans if status else None}))


def run_app(base_url: str, endpoint: str, spool: Path, calls: int) -> dict:
    command = [sys.executable, __file__, "--app", base_url, endpoint, str(spool), "--calls", str(calls)]
    result = subprocess.run(command, capture_output=True, text=True, check=True, timeout=600)
    return json.loads(result.stdout)


def quantile(values: list[int], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] / 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=2000, help="timed calls per round and scenario")
    parser.add_argument("--rounds", type=int, default=4, help="up/down pairs, each in fresh processes")
    parser.add_argument("--app", nargs=3, metavar=("BASE_URL", "ENDPOINT", "SPOOL"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.app:
        app(args.app[0], args.app[1], Path(args.app[2]), args.calls)
        return

    with tempfile.TemporaryDirectory() as folder, FakeOpenAI() as fake:
        port = free_port()
        db = f"{folder}/bench.duckdb"
        collector = subprocess.Popen(
            [sys.executable, "-m", "llmledger_cli", "collector", "--db", db, "--port", str(port), "--grpc-port", "-1"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        up_url = f"http://127.0.0.1:{port}"
        down_url = f"http://127.0.0.1:{free_port()}"
        try:
            if not wait_until_ok(f"{up_url}/healthz", 60):
                raise RuntimeError("collector did not start")
            latencies: dict[str, list[int]] = {"up": [], "down": []}
            round_p50s: dict[str, list[float]] = {"up": [], "down": []}
            spooled = 0
            for round_ in range(args.rounds):
                for scenario, endpoint in (("up", up_url), ("down", down_url)):
                    spool = Path(folder) / f"spool-{scenario}-{round_}"
                    result = run_app(fake.base_url, endpoint, spool, args.calls)
                    latencies[scenario] += result["latencies"]
                    round_p50s[scenario].append(statistics.median(result["latencies"]) / 1000)
                    if scenario == "down":
                        spooled += result["spooled"]
            stored = httpx2.get(f"{up_url}/api/v1/summary").json()["requests"]
        finally:
            collector.terminate()
            collector.wait(30)

    expected = args.rounds * (args.calls + WARMUP)
    print(f"{'collector':<12}{'p50 µs':>10}{'p99 µs':>10}   p50 of each round (µs; {args.calls} chat calls per round)")
    for scenario in ("up", "down"):
        values = latencies[scenario]
        rounds = " ".join(f"{p50:.0f}" for p50 in round_p50s[scenario])
        print(f"{scenario:<12}{statistics.median(values) / 1000:>10.1f}{quantile(values, 0.99):>10.1f}   {rounds}")
    ratio = statistics.median(latencies["down"]) / statistics.median(latencies["up"])
    print(f"p50 down / up: {ratio:.3f} (goal: within 10%)")
    print(f"spans stored while up: {stored} of {expected}; spooled while down: {spooled} of {expected}")


if __name__ == "__main__":
    main()
