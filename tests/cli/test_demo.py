"""`llmledger demo` as `make run` starts it: every page's data within a minute, OpenAI's bill reconciled, and one
SIGTERM stops everything it started."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from decimal import Decimal
from typing import Any

import httpx2
import pytest

from llmledger.testing.waiting import free_port, wait_until_ok


def _poll(url: str, ready: Any, timeout_s: float = 90) -> Any:
    deadline = time.monotonic() + timeout_s
    body = None
    while time.monotonic() < deadline:
        response = httpx2.get(url, timeout=30)
        if response.status_code == 200 and ready(body := response.json()):
            return body
        time.sleep(1)
    raise AssertionError(f"{url} never became ready; last answer {body}")


@pytest.fixture(scope="module")
def demo_urls(tmp_path_factory: pytest.TempPathFactory) -> Any:
    api_port, grpc_port, dashboard_port = free_port(), free_port(), free_port()
    command = [sys.executable, "-m", "llmledger_cli", "demo", "--port", str(api_port), "--grpc-port", str(grpc_port)]
    log = tmp_path_factory.mktemp("demo") / "demo.log"
    # As a user runs it: without the test suite's map that makes the loopback fake OpenAI (tests/conftest.py).
    env = {name: value for name, value in os.environ.items() if name != "LLMLEDGER_PROVIDERS"}
    with log.open("w") as output:
        process = subprocess.Popen(
            [*command, "--dashboard-port", str(dashboard_port)], stdout=output, stderr=output, env=env
        )
    try:
        yield process, f"http://127.0.0.1:{api_port}", f"http://127.0.0.1:{dashboard_port}"
    finally:
        if process.poll() is None:
            process.terminate()  # SIGTERM: the demo stops its dashboard too (SIGKILL would leave it running)
            process.wait(60)
        print(log.read_text()[-3000:])


def test_every_page_has_data_within_a_minute(demo_urls: Any) -> None:
    _process, api, dashboard = demo_urls
    assert wait_until_ok(f"{dashboard}/_stcore/health", 60)
    summary = _poll(f"{api}/api/v1/summary", lambda body: body["requests"] >= 22_000)
    assert Decimal(summary["cost_usd"]) > 0
    reconciliation = _poll(f"{api}/api/v1/reconciliation?by=model", lambda body: body["untracked"])
    untracked = {row["line_item"] for row in reconciliation["untracked"]}
    assert "dall-e-2" in untracked  # images made from a script, without the wrapper
    rows = reconciliation["rows"]
    # OpenAI bills what the collector priced, to the nano-dollar, for every model our price book knows ...
    known = [row for row in rows if row["model"] == "gpt-4o-mini" and row["day"] < reconciliation["to"][:10]]
    assert known
    assert {row["our_cost_usd"] == row["openai_cost_usd"] for row in known[:-1]} == {True}
    # ... and more where our side is unpriced (the fine-tuned model) or untracked (a key without the wrapper).
    totals = reconciliation["totals"]
    assert Decimal(totals["openai_cost_usd"]) > Decimal(totals["our_cost_usd"])
    readiness = _poll(f"{api}/api/v1/readiness?service=support-bot", lambda body: body["categories"])
    assert readiness["score"] > 0
    assert _poll(f"{api}/api/v1/calls?limit=5", lambda body: body["calls"])
    # The live app's calls (to the loopback fake standing in for OpenAI) are OpenAI's and priced.
    live = _poll(f"{api}/api/v1/calls?service=demo-live-app&limit=20", lambda body: body["calls"])["calls"]
    assert {call["provider"] for call in live} == {"openai"}
    assert all(call["cost_usd"] is not None for call in live if call["status"] == "ok")


def test_sigterm_stops_the_collector_and_the_dashboard(demo_urls: Any) -> None:
    process, api, dashboard = demo_urls
    assert wait_until_ok(f"{api}/healthz", 60)
    process.send_signal(signal.SIGTERM)
    assert process.wait(60) == 0
    for url in (f"{api}/healthz", f"{dashboard}/_stcore/health"):
        with pytest.raises(httpx2.TransportError):
            httpx2.get(url, timeout=5)
