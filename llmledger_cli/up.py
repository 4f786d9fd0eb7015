"""`llmledger up` and `llmledger demo`: the collector and the dashboard together, one Ctrl-C stops both."""

from __future__ import annotations

import argparse
import logging
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING

from collector.config import CollectorConfig
from collector.server import Collector
from dashboard.launch import check_sign_in, interrupted_by_sigterm, start_dashboard, stop
from llmledger.testing.waiting import wait_until_ok
from sample_data import DEMO_FILE

if TYPE_CHECKING:
    from llmledger.testing.fake_openai_admin import FakeOpenAIAdmin

log = logging.getLogger("llmledger")
CENT = Decimal("0.01")


def _api_url(args: argparse.Namespace) -> str:
    host = "127.0.0.1" if args.host in ("0.0.0.0", "::") else args.host
    return f"http://{host}:{args.port}"


def up(
    args: argparse.Namespace,
    after_start: threading.Thread | None = None,
    before_shutdown: Callable[[], None] | None = None,
) -> int:
    """Serve the collector in this thread and the dashboard beside it until SIGINT/SIGTERM."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("httpx2").setLevel(logging.WARNING)  # one line per HTTP request drowns the rest
    check_sign_in(args.host)  # before the collector opens anything
    collector = Collector(CollectorConfig.from_args(args))
    dashboard = None
    try:
        with interrupted_by_sigterm():  # until serve() takes the signals over, SIGTERM acts as Ctrl-C does
            try:
                dashboard = start_dashboard(_api_url(args), args.host, args.dashboard_port)
                log.info("dashboard on http://%s:%d", args.host, args.dashboard_port)
                if after_start is not None:
                    after_start.start()
                collector.serve(before_shutdown=before_shutdown)
            finally:
                if dashboard is not None:
                    stop(dashboard)
    except KeyboardInterrupt:  # a signal before the collector took them over
        pass
    finally:
        collector.shutdown()  # once: serve() has already shut down unless something stopped it first
    return 0


def demo(args: argparse.Namespace) -> int:
    """`up` on a demo database loaded with the sample data, plus a simulated app making live calls, and a local
    fake of OpenAI's Costs and Usage APIs billing that traffic (and some untracked spend) for reconciliation."""
    from llmledger.credentials import client_token
    from llmledger.testing.fake_openai_admin import FakeOpenAIAdmin
    from llmledger_cli.load import load_file
    from llmledger_cli.simulated_app import run_simulated_app

    folder = Path(tempfile.mkdtemp(prefix="llmledger-demo-"))
    if args.db is None:
        args.db = str(folder / "demo.duckdb")
    api = _api_url(args)
    stopping = threading.Event()
    openai_bill = FakeOpenAIAdmin().start()
    args.openai_admin_key_file = folder / "openai-admin-key"
    args.openai_admin_key_file.write_text("sk-admin-demo")
    args.openai_base_url = openai_bill.base_url

    def feed() -> None:
        if not wait_until_ok(f"{api}/healthz", 60, interval=0.2, stop=stopping):
            return
        started = time.monotonic()
        token = client_token("ingest", "admin")
        result = load_file(DEMO_FILE, api, token=token)
        log.info("loaded %d sample calls in %.1f s", result.spans_sent, time.monotonic() - started)
        bill_and_reconcile(openai_bill, api, result.shift, client_token("admin"))  # pulling is an admin change
        run_simulated_app(api, stopping, token=token)

    def stop_feeding() -> None:
        # The simulated app flushes its last spans while the collector still answers.
        stopping.set()
        feeder.join(15)

    log.info("demo database %s", args.db)
    feeder = threading.Thread(target=feed, name="llmledger-demo-app", daemon=True)
    try:
        return up(args, after_start=feeder, before_shutdown=stop_feeding)
    finally:
        openai_bill.stop()


def bill_and_reconcile(openai_bill: FakeOpenAIAdmin, api: str, shift: timedelta, token: str | None) -> None:
    """Have the fake OpenAI bill the sample traffic as loaded (moved by `shift`), and the collector pull it all."""
    import httpx2

    from sample_data.bill import demo_bill

    bill = demo_bill(DEMO_FILE, shift)
    openai_bill.costs, openai_bill.usage = bill.costs, bill.usage
    first_day = min(item.day for item in bill.costs)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        pulled = httpx2.post(f"{api}/api/v1/reconcile", params={"from": str(first_day)}, headers=headers, timeout=120)
    except httpx2.HTTPError as exc:  # the demo goes on without it: the page says no pull has succeeded
        log.warning("the demo's reconciliation pull failed: %s", exc)
        return
    if pulled.status_code == 200:
        log.info("reconciled the demo's OpenAI bill (%s)", bill.total.quantize(CENT))
    else:
        log.warning("the demo's reconciliation pull was refused: HTTP %s %s", pulled.status_code, pulled.text[:200])
