"""Soak: a real collector and a real instrumented app at a steady rate for a long time, memory sampled every
minute; at the end every call must be stored once. Not part of CI (it runs for 30 minutes by default).

    python tests/soak/soak.py [--minutes 30] [--rate 20]

Prints one line per minute (RSS of the collector and of the app, rows stored) and the growth of each.
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx2

from llmledger.testing.waiting import free_port, wait_until_ok

ROOT = Path(__file__).resolve().parents[2]


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for {pid}")


def stored_calls(api: str) -> int:
    return int(httpx2.get(f"{api}/api/v1/summary", params={"service": "soak-app"}, timeout=60).json()["requests"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30)
    parser.add_argument("--rate", type=float, default=20, help="calls per second")
    parser.add_argument("--sample-seconds", type=float, default=60)
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="llmledger-soak-"))
    port = free_port()
    api = f"http://127.0.0.1:{port}"
    collector = subprocess.Popen(
        [sys.executable, "-m", "llmledger_cli", "collector", "--db", str(folder / "soak.duckdb"), "--port", str(port),
         "--grpc-port", "-1", "--alert-interval", "15"],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    if not wait_until_ok(f"{api}/healthz", 60):
        raise SystemExit("collector did not start")
    app = subprocess.Popen(
        [sys.executable, str(Path(__file__).with_name("soak_app.py")), api, str(args.rate)],
        cwd=ROOT, stdout=subprocess.PIPE, text=True,
        env={"LLMLEDGER_SPOOL_DIR": str(folder / "spool"), "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    samples: list[tuple[float, float, float, int]] = []
    started = time.monotonic()
    print("minute  collector_rss_mib  app_rss_mib  rows_stored", flush=True)
    try:
        while True:
            minute = (time.monotonic() - started) / 60
            sample = (minute, rss_mib(collector.pid), rss_mib(app.pid), stored_calls(api))
            samples.append(sample)
            print(f"{sample[0]:6.1f}  {sample[1]:17.1f}  {sample[2]:11.1f}  {sample[3]:11,}", flush=True)
            if minute >= args.minutes:
                break
            time.sleep(args.sample_seconds)
    finally:
        app.send_signal(signal.SIGTERM)
        made = int((app.communicate(timeout=120)[0] or "0").strip() or 0)
    time.sleep(3)
    stored = stored_calls(api)
    collector.send_signal(signal.SIGTERM)
    collector.wait(60)
    first, warm, last = samples[0], samples[min(5, len(samples) - 1)], samples[-1]
    print(f"calls made {made:,}, stored {stored:,} ({'all stored once' if made == stored else 'MISMATCH'})")
    for name, index in (("collector", 1), ("app", 2)):
        print(
            f"{name} RSS: {first[index]:.1f} MiB at start, {warm[index]:.1f} after {warm[0]:.0f} min, "
            f"{last[index]:.1f} at {last[0]:.0f} min (growth after warm-up {last[index] - warm[index]:+.1f} MiB)"
        )
    return 0 if made == stored else 1


if __name__ == "__main__":
    sys.exit(main())
