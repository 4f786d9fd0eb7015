"""How long each dashboard page takes to be fully drawn in a real browser, over N generated calls.

The database is made as `benchmarks/queries.py` makes it (default 10 million calls over 90 days); a real
collector serves it, the real dashboard reads from it, and Debian's Chromium (driven by Playwright) opens every
page from the sidebar: once cold (the dashboard's caches empty) and once more after its 60 s data caches expire
(the sidebar's list of filter values is cached for 5 minutes and stays warm). A page counts as drawn when
Streamlit's script run has ended and no placeholder is left. Each window (the sidebar's time range: 24h, 7d, 30d)
gets a fresh collector and dashboard, so every window's first visit is a cold server's first load.

    python -m benchmarks.pages [--rows 10000000] [--db PATH] [--window 24h|7d|30d|all]
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from playwright.sync_api import Page, sync_playwright
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.queries import generate  # noqa: E402
from dashboard.launch import start_dashboard, stop  # noqa: E402
from llmledger.testing.waiting import free_port, wait_until_ok  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
STATE = "document.querySelector('[data-testid=\"stApp\"]')?.dataset.testScriptState"
DRAWN = f"() => {STATE} === 'notRunning' && !document.querySelector('[data-testid=\"stSkeleton\"]')"


# Notes every time Streamlit starts a script run, however short, so a run can't end before we look for it.
WATCH_RUNS = """() => {
    window.__llmledgerRan = false;
    if (window.__llmledgerWatching) return;
    window.__llmledgerWatching = true;
    const app = document.querySelector('[data-testid="stApp"]');
    new MutationObserver(() => {
        if (app.dataset.testScriptState === 'running') window.__llmledgerRan = true;
    }).observe(app, {attributes: true, attributeFilter: ['data-test-script-state']});
}"""


def first_load(page: Page, url: str) -> float:
    started = time.perf_counter()
    page.goto(url)
    page.wait_for_selector('[data-testid="stApp"]', timeout=60_000)
    with contextlib.suppress(PlaywrightTimeoutError):  # a run that ended before we looked
        page.wait_for_function(f"() => {STATE} === 'running'", timeout=3_000, polling=10)
    page.wait_for_function(DRAWN, timeout=120_000, polling=10)
    return time.perf_counter() - started


def drawn_after(page: Page, action: object) -> float:
    page.evaluate(WATCH_RUNS)
    started = time.perf_counter()
    action()  # type: ignore[operator]
    page.wait_for_function(
        f"() => window.__llmledgerRan && ({DRAWN.removeprefix('() => ')})", timeout=120_000, polling=10
    )
    return time.perf_counter() - started


WINDOWS = ("24h", "7d", "30d")


def peak_rss_mb(pid: int) -> float:
    """A running process's peak resident memory (Linux's VmHWM), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--db", type=Path, default=None, help="reuse or create this file (default: a temp file)")
    parser.add_argument("--window", choices=[*WINDOWS, "all"], default="24h", help="the sidebar's time range")
    args = parser.parse_args()
    folder = tempfile.TemporaryDirectory()
    db = args.db or Path(folder.name) / "pages.duckdb"
    if not db.exists():
        print(f"generated {args.rows:,} calls in {generate(db, args.rows, datetime.now(tz=UTC)):.1f} s", flush=True)
    try:
        for window in WINDOWS if args.window == "all" else (args.window,):
            measure(["--db", str(db)], window)
    finally:
        folder.cleanup()


def measure(store: list[str], window: str) -> None:
    """Start a collector on `store` (its options: `--db PATH`, or `--lake ... --data-path ...`) and a dashboard,
    time every page with the sidebar's range at `window`, print."""
    port = free_port()
    collector = subprocess.Popen(
        [sys.executable, "-m", "llmledger_cli", "collector", *store, "--port", str(port), "--grpc-port", "-1"],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    api = f"http://127.0.0.1:{port}"
    dashboard_port = free_port()
    dashboard = start_dashboard(api, "127.0.0.1", dashboard_port)
    try:
        assert wait_until_ok(f"{api}/healthz", 120), "collector did not start"
        assert wait_until_ok(f"http://127.0.0.1:{dashboard_port}/_stcore/health", 60), "dashboard did not start"
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            first = first_load(page, f"http://127.0.0.1:{dashboard_port}/?range={window}")
            shown = page.locator('[data-testid="stMain"] [data-testid="stCaptionContainer"]').first.inner_text()
            links = page.locator('[data-testid="stSidebarNav"] a')
            names = [links.nth(i).inner_text().strip().splitlines()[-1] for i in range(links.count())]
            timings: dict[str, list[float]] = {name: [] for name in names}
            timings[names[0]].append(first)
            for round_number in range(2):
                for index, name in enumerate(names):
                    if round_number == 0 and index == 0:
                        continue
                    timings[name].append(drawn_after(page, lambda i=index: links.nth(i).click()))
                if round_number == 0:
                    time.sleep(61)  # the dashboard caches answers for 60 s (filter choices for 5 min)
            browser.close()
        print(f"window {window} ({shown}); collector's peak RSS {peak_rss_mb(collector.pid):,.0f} MB")
        print(f"{'page':<18}{'first visit s':>14}{'after expiry s':>16}")
        for name, seconds in timings.items():
            print(f"{name:<18}{seconds[0]:>14.2f}{seconds[-1]:>16.2f}")
    finally:
        stop(dashboard)
        collector.send_signal(signal.SIGTERM)
        collector.wait(60)


if __name__ == "__main__":
    main()
