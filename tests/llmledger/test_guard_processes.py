"""Two app processes share one enforced budget through a real collector: each sees the other's spend only through
the collector's polled answer, so together they may overshoot by about one poll interval's spend (plus the export
delay); this measures it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

from llmledger import pricing
from llmledger.testing.fake_openai import FakeOpenAI
from tests.collector_harness import RunningCollector

ROOT = Path(__file__).resolve().parents[2]
POLL_S = 0.5
EXPORT_DELAY_S = 0.2
PAUSE_S = 0.02  # between one process's calls
APP = """
import json, sys, time
import openai
import llmledger

llmledger.configure(service_name="guarded")
llmledger.instrument(guard=llmledger.GuardSettings(poll_interval_s=float(sys.argv[1])))
client = openai.OpenAI(max_retries=0)
calls, started = 0, time.monotonic()
try:
    while calls < 2000:
        client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], max_tokens=40)
        calls += 1
        time.sleep(float(sys.argv[2]))
except llmledger.BudgetExceeded:
    pass
seconds = time.monotonic() - started
llmledger.flush(timeout=10)
print(json.dumps({"calls": calls, "seconds": seconds}))
"""


def test_two_processes_overshoot_by_at_most_one_poll_of_spend(fake: FakeOpenAI, tmp_path: Path) -> None:
    collector = RunningCollector(tmp_path / "calls.duckdb")
    try:
        each = one_call_cost()
        limit = 60 * each
        rule = {"name": "day cap", "metric": "cost", "window": "day", "op": ">", "threshold": float(limit),
                "enforce": {"action": "block"}}  # fmt: skip
        created = collector.http.post("/api/v1/alert-rules", json=rule)
        assert created.status_code in (200, 201), created.text
        env = {
            **os.environ,
            "OPENAI_BASE_URL": fake.base_url,
            "OPENAI_API_KEY": "sk-proj-example",
            "LLMLEDGER_ENDPOINT": collector.url,
            "LLMLEDGER_EXPORT_DELAY_MS": str(int(EXPORT_DELAY_S * 1000)),
            "LLMLEDGER_SPOOL_DIR": str(tmp_path / "spool"),
        }
        command = [sys.executable, "-c", APP, str(POLL_S), str(PAUSE_S)]
        apps = [subprocess.Popen(command, env=env, cwd=ROOT, stdout=subprocess.PIPE, text=True) for _ in range(2)]
        runs = [json.loads(app.communicate(timeout=120)[0]) for app in apps]
        summary = collector.get("/api/v1/summary", **{"from": "2000-01-01"})
    finally:
        collector.stop()
    spent = Decimal(summary["cost_usd"])
    # Every call stored once, and each process's blocked call too (its span says so; it cost nothing).
    assert summary["requests"] == sum(run["calls"] for run in runs) + len(runs)
    rate = sum(run["calls"] / run["seconds"] for run in runs)  # calls per second, both processes
    lag_s = POLL_S + EXPORT_DELAY_S + 0.5  # a poll, the export delay, the collector's commit
    allowed = Decimal(str(rate * lag_s)) * each
    overshoot = spent - limit
    print(f"\nlimit ${limit}, spent ${spent}: overshoot ${max(overshoot, Decimal(0))} "
          f"({float(max(overshoot, Decimal(0)) / each):.1f} calls; one poll of both processes is "
          f"{rate * POLL_S:.1f} calls)")  # fmt: skip
    assert overshoot <= allowed
    assert spent > limit / 2  # the processes did reach the budget: it blocked them, not something else


def one_call_cost() -> Decimal:
    rates = pricing.rates_for("gpt-4o-mini", None)
    assert rates is not None
    # The fake's usage for [user: "hi"], max_tokens 40: what tests/llmledger/test_guard.py measures as one call.
    from llmledger.testing.fake_openai import _output_length

    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 40}
    prompt = (5 + len(json.dumps(body["messages"]))) // 4
    return rates.cost(pricing.Usage(input_tokens=prompt, output_tokens=_output_length(body)))
