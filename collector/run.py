"""`llmledger up` and `llmledger demo`: the collector and the dashboard together, one Ctrl-C stops both."""

from __future__ import annotations

import argparse
import logging
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from collector.server import Collector
from dashboard.launch import start_dashboard, stop
from llmledger.testing.waiting import wait_until_ok
from sample_data import DEMO_FILE

log = logging.getLogger("llmledger")


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
    collector = Collector(args)
    dashboard = start_dashboard(_api_url(args), args.host, args.dashboard_port)
    log.info("dashboard on http://%s:%d", args.host, args.dashboard_port)
    if after_start is not None:
        after_start.start()
    try:
        collector.serve(before_shutdown=before_shutdown)
    finally:
        stop(dashboard)
    return 0


def demo(args: argparse.Namespace) -> int:
    """`up` on a demo database loaded with the sample data, plus a simulated app making live calls."""
    from llmledger.credentials import client_token
    from llmledger.replay import load_file
    from llmledger.simulated_app import run_simulated_app

    if args.db is None:
        args.db = str(Path(tempfile.mkdtemp(prefix="llmledger-demo-")) / "demo.duckdb")
    api = _api_url(args)
    stopping = threading.Event()

    def feed() -> None:
        if not wait_until_ok(f"{api}/healthz", 60, interval=0.2, stop=stopping):
            return
        started = time.monotonic()
        token = client_token("ingest", "admin")
        result = load_file(DEMO_FILE, api, token=token)
        log.info("loaded %d sample calls in %.1f s", result.spans_sent, time.monotonic() - started)
        run_simulated_app(api, stopping, token=token)

    def stop_feeding() -> None:
        # The simulated app flushes its last spans while the collector still answers.
        stopping.set()
        feeder.join(15)

    log.info("demo database %s", args.db)
    feeder = threading.Thread(target=feed, name="llmledger-demo-app", daemon=True)
    return up(args, after_start=feeder, before_shutdown=stop_feeding)
