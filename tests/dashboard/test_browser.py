"""The dashboard as a person sees it: every page in headless Chromium (Debian's, driven by Playwright)."""

from __future__ import annotations

import csv
import io
import os
import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from dashboard.launch import start_dashboard, stop
from llmledger.testing.fake_openai_admin import FakeOpenAIAdmin
from llmledger.testing.waiting import free_port, wait_until_ok
from llmledger_cli.load import load_file
from llmledger_cli.up import bill_and_reconcile
from sample_data import DEMO_FILE
from tests.collector.receivers import Receiver
from tests.collector_harness import RunningCollector

CHROMIUM = "/usr/bin/chromium"
SCREENSHOTS = Path(os.environ.get("LLMLEDGER_SCREENSHOTS", Path(__file__).resolve().parents[2] / "screenshots"))
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningCollector, str]]:
    """The demo's parts: a collector loaded with the sample data, and the dashboard reading from it."""
    folder = tmp_path_factory.mktemp("browser")
    (folder / "admin-key").write_text("sk-admin-test")
    openai_bill = FakeOpenAIAdmin().start()
    # The test evaluates alerts itself: the collector's own evaluator must not race it.
    collector = RunningCollector(
        folder / "demo.duckdb",
        "--alert-interval",
        "3600",
        "--openai-admin-key-file",
        str(folder / "admin-key"),
        "--openai-base-url",
        openai_bill.base_url,
    )
    bill_and_reconcile(openai_bill, collector.url, load_file(DEMO_FILE, collector.url).shift, token=None)
    port = free_port()
    dashboard = start_dashboard(collector.url, "127.0.0.1", port)
    url = f"http://127.0.0.1:{port}"
    try:
        assert wait_until_ok(f"{url}/_stcore/health", 60), "dashboard did not start"
        yield collector, url
    finally:
        stop(dashboard)
        collector.stop()
        openai_bill.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield instance
        instance.close()


def _settle(page: Page) -> None:
    """Wait until Streamlit has finished running the script for this view."""
    page.wait_for_selector('[data-testid="stApp"]', timeout=30_000)
    page.wait_for_timeout(300)  # let the rerun begin before waiting for it to end
    # The status widget appears only some time into a run: the app's own script state says when it has ended.
    page.wait_for_function(
        "() => document.querySelector('[data-testid=\"stApp\"]')?.dataset.testScriptState === 'notRunning'"
        " && !document.querySelector('[data-testid=\"stStatusWidget\"]')"
        " && !document.querySelector('[data-testid=\"stSkeleton\"]')",
        timeout=30_000,
    )
    page.wait_for_timeout(300)


def test_every_page_renders_without_error(demo, browser: Browser) -> None:
    _collector, url = demo
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    print(f"\nscreenshots in {SCREENSHOTS}")
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(url)
    _settle(page)
    links = page.locator('[data-testid="stSidebarNav"] a')
    # A link's text is its icon's ligature name, then its title.
    names = [links.nth(index).inner_text().strip().splitlines()[-1] for index in range(links.count())]
    assert len(names) >= 6, names
    for index, name in enumerate(names):
        started = time.monotonic()
        page.locator('[data-testid="stSidebarNav"] a').nth(index).click()
        _settle(page)
        drawn_s = time.monotonic() - started
        page.screenshot(path=str(SCREENSHOTS / f"{index + 1}-{name.lower().replace(' ', '-').replace('&', 'and')}.png"))
        assert page.locator('[data-testid="stException"]').count() == 0, f"{name} shows an exception"
        if name.lower() in ("overview", "spend", "latency", "errors & limits", "chargeback"):
            assert page.locator(".vega-embed").count() > 0, f"{name} drew no chart"
        if name.lower() in ("calls", "reconciliation", "readiness", "chargeback"):
            assert page.locator('[data-testid="stDataFrame"]').count() > 0, f"{name} shows no table"
        print(f"{name}: drawn in {drawn_s:.2f} s")
    page.close()


def test_finance_csv_downloads_in_one_click_and_matches_the_summary(demo, browser: Browser, tmp_path: Path) -> None:
    collector, url = demo
    page = browser.new_page()
    page.goto(url)
    _settle(page)
    page.locator('[data-testid="stSidebarNav"] a', has_text="Exports").click()
    _settle(page)
    totals = []
    for period in ("Day", "Month"):  # the second click follows a rerun of the page
        page.locator('[data-testid="stButtonGroup"] button', has_text=period).click()
        _settle(page)
        with page.expect_download() as download_info:
            page.locator('[data-testid="stDownloadButton"] button').first.click()
        path = tmp_path / f"finance-{period}.csv"
        download_info.value.save_as(path)
        rows = list(csv.DictReader(io.StringIO(path.read_text())))
        assert rows, "the CSV is empty"
        assert {len(row["period"]) for row in rows} == {len("2026-01-01") if period == "Day" else len("2026-01")}
        totals.append(sum(Decimal(row["cost_usd"]) for row in rows))
    params = {key: value for key, value in _range_shown(page).items() if value}
    assert totals == [Decimal(collector.get("/api/v1/summary", **params)["cost_usd"])] * 2
    page.close()


def _range_shown(page: Page) -> dict[str, str]:
    """The from/to the page is showing, read back from the URL it keeps its filters in."""
    from urllib.parse import parse_qs, urlparse

    query = parse_qs(urlparse(page.url).query)
    return {"from": query.get("from", [""])[0], "to": query.get("to", [""])[0]}


def test_run_a_query_on_the_sql_page_and_see_a_table_and_a_chart(demo, browser: Browser) -> None:
    collector, url = demo
    page = browser.new_page(viewport={"width": 1400, "height": 1400})
    try:
        page.goto(url)
        _settle(page)
        page.locator('[data-testid="stSidebarNav"] a', has_text="SQL").click()
        _settle(page)
        statement = page.locator(".st-key-sql_text textarea").input_value()
        page.locator(".st-key-sql_run button").click()
        _settle(page)
        rows = collector.http.post("/api/v1/sql", json={"sql": statement}).json()["row_count"]
        assert rows > 30  # the demo's 90 days, one row each
        expect(page.get_by_text(f"{rows:,} rows in")).to_have_count(1, timeout=30_000)
        expect(page.locator('[data-testid="stDataFrame"]')).to_have_count(1)
        expect(page.locator('[data-testid="stMain"] .vega-embed')).to_have_count(1)
        page.screenshot(path=str(SCREENSHOTS / "flow-sql-result.png"), full_page=True)

        page.locator(".st-key-sql_text textarea").fill("DELETE FROM llm_calls")
        page.keyboard.press("Control+Enter")
        _settle(page)
        page.locator(".st-key-sql_run button").click()
        _settle(page)
        expect(page.get_by_text("The collector refused the query: A DELETE statement is not allowed")).to_have_count(1)
        expect(page.locator('[data-testid="stDataFrame"]')).to_have_count(0)
        assert collector.get("/api/v1/summary")["requests"] > 0
    finally:
        page.close()


def test_create_a_rule_in_the_ui_and_see_it_fire(demo, browser: Browser) -> None:
    collector, url = demo
    page = browser.new_page(viewport={"width": 1400, "height": 1200})
    page.goto(url)
    _settle(page)
    page.locator('[data-testid="stSidebarNav"] a', has_text="Alerts").click()
    _settle(page)
    page.locator(".st-key-alert_new_name input").fill("any spend today")
    page.locator(".st-key-alert_new_threshold input").fill("0")
    page.locator(".st-key-alert_new_window input").click()
    page.get_by_role("option", name="day", exact=True).click()
    page.get_by_role("button", name="Create rule").click()
    _settle(page)
    # Auto-retrying: on a busy machine the rerun may still be drawing when _settle returns.
    expect(page.get_by_text("Created rule 'any spend today'")).to_have_count(1)
    (rule,) = collector.get("/api/v1/alert-rules")["rules"]
    assert (rule["metric"], rule["window"], rule["threshold"]) == ("cost", "day", 0.0)

    con = collector.collector.store.reader()
    try:
        changes = collector.collector.alert_engine.evaluate_once(con, datetime.now(tz=UTC))
    finally:
        con.close()
    assert changes == [(rule["id"], "firing")]
    page.wait_for_timeout(5500)  # the dashboard caches alert reads for 5 s
    page.locator('[data-testid="stSidebarNav"] a', has_text="Overview").click()
    _settle(page)
    page.screenshot(path=str(SCREENSHOTS / "flow-overview-firing.png"))
    assert page.get_by_text("Firing (1)").count() == 1
    page.close()


def test_edit_a_rule_in_the_ui_and_see_the_change(demo, browser: Browser) -> None:
    collector, url = demo
    body = {"name": "edit me", "metric": "requests", "window": "1h", "op": ">", "threshold": 1_000_000}
    rule_id = collector.http.post("/api/v1/alert-rules", json=body).json()["id"]
    time.sleep(5.5)  # the dashboard caches alert reads for 5 s (across sessions): let it see the new rule
    page = browser.new_page(viewport={"width": 1400, "height": 1400})
    try:
        page.goto(url)
        _settle(page)
        page.locator('[data-testid="stSidebarNav"] a', has_text="Alerts").click()
        _settle(page)
        page.locator(".st-key-alert_manage_rule input").click()
        page.get_by_role("option", name=f"edit me (id {rule_id})").click()
        _settle(page)
        page.locator(".st-key-alert_edit button").click()
        _settle(page)
        name, threshold = (
            page.locator(".st-key-alert_edit_name input"),
            page.locator(".st-key-alert_edit_threshold input"),
        )
        assert (name.input_value(), threshold.input_value()) == ("edit me", "1000000")
        name.fill("edited in the browser")
        threshold.fill("0")
        page.locator(".st-key-alert_edit_window input").click()
        page.get_by_role("option", name="24h").click()
        page.get_by_role("button", name="Save changes").click()
        _settle(page)
        page.screenshot(path=str(SCREENSHOTS / "flow-alerts-edited.png"))
        expect(page.get_by_text(f"Saved rule 'edited in the browser' (id {rule_id}).")).to_have_count(1)
        expect(page.locator(".st-key-alert_edit_name")).to_have_count(0)  # the edit form has closed
        expect(page.locator(".st-key-alert_manage_rule input")).to_have_value(f"edited in the browser (id {rule_id})")
        shown = collector.get(f"/api/v1/alert-rules/{rule_id}")
        assert (shown["name"], shown["window"], shown["threshold"]) == ("edited in the browser", "24h", 0.0)
    finally:
        page.close()
        collector.http.delete(f"/api/v1/alert-rules/{rule_id}")


def test_readiness_card_and_create_its_proposed_alert_rule(demo, browser: Browser) -> None:
    import re

    from dashboard.data.readiness_client import widget_key

    def css(key: str) -> str:  # Streamlit's class for a keyed element
        return ".st-key-" + re.sub(r"[^a-zA-Z0-9_-]", "-", key.strip())

    def rules_named(name: str) -> list[dict]:
        return [rule for rule in collector.get("/api/v1/alert-rules")["rules"] if rule["name"] == name]

    collector, url = demo
    service = "doc-summarizer"  # the demo's least careful service
    page = browser.new_page(viewport={"width": 1400, "height": 1400})
    created: list[int] = []
    try:
        page.goto(url)
        _settle(page)
        page.locator('[data-testid="stSidebarNav"] a', has_text="Readiness").click()
        _settle(page)
        scorecard = collector.get("/api/v1/readiness", service=service, **_range_shown(page))
        card = page.locator(css(widget_key((service, None), "card")))
        expect(card.get_by_test_id("stMetricValue")).to_have_text(f"{scorecard['score']} / 25", timeout=30_000)
        expect(card).to_contain_text(scorecard["band"])

        proposed = [
            (category["name"], item)
            for category in scorecard["categories"]
            for item in category["items"]
            if item["status"] != "pass" and (item["fix"] or {}).get("rule")
        ]
        assert proposed, "no item of the demo proposes an alert rule"
        category, item = next((found for found in proposed if found[1]["id"] == "mon.error_alert"), proposed[0])
        rule = item["fix"]["rule"]
        tab = card.get_by_role("tab", name=category, exact=True)
        tab.click()
        page.locator(css(widget_key((service, None), item["id"], "item")) + " summary").click()
        button = page.locator(css(widget_key((service, None), item["id"], "rule")) + " button")
        expect(button).to_be_visible()
        _settle(page)
        button.click()
        _settle(page)
        deadline = time.monotonic() + 30
        while not (stored := rules_named(rule["name"])) and time.monotonic() < deadline:
            time.sleep(0.2)
        created = [found["id"] for found in stored]
        assert [(found["metric"], found["filters"], found["enabled"]) for found in stored] == [
            (rule["metric"], rule["filters"], True)
        ]
        # The category stays open, with the verdict beside the item (a generous wait: a busy machine may still be
        # drawing the rerun).
        expect(page.get_by_text(f"Created alert rule {rule['name']!r}")).to_be_visible(timeout=30_000)
        expect(tab).to_have_attribute("aria-selected", "true")
        card.screenshot(path=str(SCREENSHOTS / "flow-readiness-rule-created.png"))
        after = collector.get("/api/v1/readiness", service=service, **_range_shown(page))
        assert [found["status"] for c in after["categories"] for found in c["items"] if found["id"] == item["id"]] == [
            "pass"
        ]
        expect(page.locator(css(widget_key((service, None), item["id"], "rule")))).to_have_count(0, timeout=30_000)
    finally:
        page.close()
        for rule_id in created:
            collector.http.delete(f"/api/v1/alert-rules/{rule_id}")


def _choose(page: Page, key: str, option: str) -> None:
    """Pick `option` in the select keyed `key`, and wait for the rerun that draws what depends on it."""
    page.locator(f".st-key-{key} input").click()
    page.get_by_role("option", name=option, exact=True).click()
    _settle(page)


def _type_choice(page: Page, key: str, option: str) -> None:
    """Pick `option` in a select inside a form by typing it (a form's select doesn't rerun the page, and far down a
    long page its list of options may open out of reach of a click)."""
    select = page.locator(f".st-key-{key} input")
    select.scroll_into_view_if_needed()
    select.click()
    select.press_sequentially(option)
    select.press("Enter")


def test_create_a_per_team_anomaly_rule_with_a_teams_channel_and_a_weekly_digest(demo, browser: Browser) -> None:
    """The issue's flow: a per-team anomaly rule with a Teams channel, previewed and created from the form; then a
    weekly digest created from the form and sent now to a Slack-shaped receiver on loopback."""
    collector, url = demo
    teams_url = "https://example.webhook.office.com/webhookb2/browser-secret"
    page = browser.new_page(viewport={"width": 1400, "height": 2400})
    slack = Receiver(lambda request: [] if set(request.json()) == {"text"} else ["not a Slack body"])
    created: list[int] = []
    digests: list[int] = []
    try:
        page.goto(url)
        _settle(page)
        page.locator('[data-testid="stSidebarNav"] a', has_text="Alerts").click()
        _settle(page)
        page.locator(".st-key-alert_new_name input").fill("requests per team")
        _choose(page, "alert_new_kind", "Anomaly (against its own history)")
        _choose(page, "alert_new_metric", "requests")
        _choose(page, "alert_new_group_by", "team")
        _choose(page, "alert_new_channel_type_0", "teams")
        secret = page.locator(".st-key-alert_new_channel_url_0 input")
        expect(secret).to_have_attribute("type", "password")
        secret.fill(teams_url)
        page.get_by_role("button", name="Preview over the last 7 days").first.click()
        _settle(page)
        expect(page.get_by_text(re.compile(r"group\(s\) by team previewed \(cap: 50\)"))).to_have_count(
            1, timeout=30_000
        )
        expect(page.locator(".vega-embed").first).to_be_visible()  # the page's only chart: the preview
        page.screenshot(path=str(SCREENSHOTS / "flow-alerts-anomaly-preview.png"), full_page=True)

        page.get_by_role("button", name="Create rule").click()
        _settle(page)
        expect(page.get_by_text("Created rule 'requests per team'")).to_have_count(1, timeout=30_000)
        created = [rule["id"] for rule in collector.get("/api/v1/alert-rules")["rules"]
                   if rule["name"] == "requests per team"]  # fmt: skip
        (rule,) = [collector.get(f"/api/v1/alert-rules/{rule_id}") for rule_id in created]
        assert (rule["kind"], rule["metric"], rule["group_by"], rule["baseline"]) == (
            "anomaly", "requests", "team", "hour_of_week",
        )  # fmt: skip
        assert rule["channels"] == [{"type": "teams", "url": "https://example.webhook.office.com/•••1"}]
        page.screenshot(path=str(SCREENSHOTS / "flow-alerts-anomaly-created.png"), full_page=True)

        page.locator(".st-key-digest_name input").fill("Search weekly")
        _type_choice(page, "digest_schedule", "weekly")
        page.locator(".st-key-digest_filter_team input").fill("search")
        _type_choice(page, "digest_channel_type", "slack")
        page.locator(".st-key-digest_channel_url input").fill(f"{slack.base}/services/T0/B0/browser-secret")
        page.get_by_role("button", name="Create digest").click()
        _settle(page)
        expect(page.get_by_text("Created digest 'Search weekly'")).to_have_count(1, timeout=30_000)
        [digest] = collector.get("/api/v1/digests")["digests"]
        digests = [digest["id"]]
        assert (digest["schedule"], digest["filters"], digest["channels"][0]["type"]) == (
            "weekly", {"team": ["search"]}, "slack",
        )  # fmt: skip
        page.get_by_role("button", name="Send now").click()
        _settle(page)
        [posted] = slack.wait_for(1)
        assert posted.json()["text"].startswith(":bar_chart: REPORT *Search weekly*")
        page.screenshot(path=str(SCREENSHOTS / "flow-alerts-digest-sent.png"), full_page=True)
    finally:
        page.close()
        slack.close()
        for rule_id in created:
            collector.http.delete(f"/api/v1/alert-rules/{rule_id}")
        for digest_id in digests:
            collector.http.delete(f"/api/v1/digests/{digest_id}")
