"""Live price lists (`--prices-update`) against a local server of price files, through a real collector: a list that
adds a model, one that changes a rate, and fetches that fail (a bad file, an error status, a timeout, a server that
is down) changing nothing and showing in /healthz and /metrics; a restart keeping the last good list. Costs are
worked out by hand beside each figure (tokens x USD per million / 1e6)."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from llmledger import pricing
from llmledger import semconv as sc
from llmledger.testing.waiting import free_port
from tests.collector_harness import RunningCollector
from tests.otlp_spans import chat_attributes, request_with
from tests.price_server import MINI, MINI_DEARER, NOVA, PriceServer, price_file

ROOT = Path(__file__).resolve().parents[2]
PROTOBUF = {"content-type": "application/x-protobuf"}
# A call of 1000 input tokens (200 of them cached) and 100 output tokens: at MINI 800 x 0.15 + 200 x 0.075
# + 100 x 0.60 = 195; at MINI_DEARER 800 x 0.30 + 200 x 0.15 + 100 x 1.20 = 390; at NOVA 800 x 2 + 200 x 0.5
# + 100 x 8 = 2500 (USD per million tokens, so these are 1e-6 USD).
MINI_COST, MINI_DEARER_COST, NOVA_COST = "0.000195000", "0.000390000", "0.002500000"


def version_of(body: bytes) -> str:
    return pricing.list_version(hashlib.sha256(body).hexdigest())


def wait_for(condition: Callable[[], Any], what: str, timeout: float = 30) -> Any:
    """Poll until `condition()` is truthy (a background fetch has happened); fail naming `what`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := condition():
            return value
        time.sleep(0.05)
    raise AssertionError(f"never saw {what}")


def prices(collector: RunningCollector) -> dict[str, Any]:
    return collector.get("/healthz")["prices"]


def send(collector: RunningCollector, request_id: str, model: str) -> None:
    attributes = chat_attributes(
        **{
            sc.REQUEST_ID: request_id,
            sc.GEN_AI_REQUEST_MODEL: model,
            sc.GEN_AI_RESPONSE_MODEL: model,
            sc.GEN_AI_USAGE_INPUT_TOKENS: 1000,
            sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS: 200,
            sc.GEN_AI_USAGE_OUTPUT_TOKENS: 100,
            sc.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS: 0,
            sc.GEN_AI_USAGE_COST_AMOUNT: None,
        }
    )
    body = request_with([attributes], start_ns=time.time_ns()).SerializeToString()
    assert collector.http.post("/v1/traces", content=body, headers=PROTOBUF).status_code == 200


def window() -> dict[str, str]:
    today = datetime.now(UTC).date()
    return {"from": str(today - timedelta(days=1)), "to": str(today + timedelta(days=2))}


def stored(collector: RunningCollector) -> dict[str, tuple[str | None, str | None]]:
    calls = collector.get("/api/v1/calls", limit="1000", **window())["calls"]
    return {call["request_id"]: (call["cost_usd"], call["price_version"]) for call in calls}


def metric(collector: RunningCollector, outcome: str) -> float:
    for line in collector.http.get("/metrics").text.splitlines():
        if line.startswith(f'llmledger_price_updates_total{{outcome="{outcome}"}}'):
            return float(line.split()[-1])
    return 0.0


@pytest.fixture
def server() -> Iterator[PriceServer]:
    running = PriceServer()
    yield running
    running.stop()


def updating(db: Path, url: str, *extra: str) -> RunningCollector:
    return RunningCollector(db, "--prices-update", url, "--prices-update-interval", "0.2", *extra)


def test_a_new_list_prices_new_calls_and_the_past_only_when_repriced(server: PriceServer, tmp_path: Path) -> None:
    first = price_file(MINI)
    collector = updating(tmp_path / "ledger.duckdb", server.url)
    try:
        wait_for(lambda: prices(collector)["list_version"] == version_of(first), "the first list adopted")
        status = prices(collector)
        assert (status["bundled"], status["models"], status["source"]) == (False, 1, server.url)
        assert status["updates"]["last_error"] is None
        send(collector, "mini-1", "gpt-4o-mini")
        send(collector, "nova-1", "gpt-9-nova")  # unknown to this list (and to the bundled one)
        assert stored(collector) == {"mini-1": (MINI_COST, version_of(first)), "nova-1": (None, None)}
        listed = collector.get("/api/v1/prices", **window())
        nova = {"model": "gpt-9-nova", "provider": "openai", "requests": 1, "input_tokens": 1000,
                "output_tokens": 100, "priced_now": False}  # fmt: skip
        assert [{k: m[k] for k in nova} for m in listed["unpriced_models"]] == [nova]

        # A list that adds the model: its next calls are priced; the earlier one stays unpriced.
        second = price_file(MINI, NOVA)
        server.serve(second)
        wait_for(lambda: prices(collector)["list_version"] == version_of(second), "the list with the new model")
        send(collector, "nova-2", "gpt-9-nova")
        assert stored(collector) == {
            "mini-1": (MINI_COST, version_of(first)),
            "nova-1": (None, None),
            "nova-2": (NOVA_COST, version_of(second)),
        }
        listed = collector.get("/api/v1/prices", **window())
        assert listed["unpriced_models"][0]["priced_now"] is True
        assert listed["reprice_offered"] == {"other_version_requests": 1, "newly_priced_requests": 1}
        assert {v["price_version"]: (v["requests"], v["current"]) for v in listed["versions"]} == {
            version_of(first): (1, False),
            version_of(second): (1, True),
        }

        # The dry run says what would change per model, and changes nothing.
        command = [sys.executable, "-m", "llmledger_cli", "reprice", "--api", collector.url, "--from", window()["from"],
                   "--to", window()["to"], "--dry-run"]  # fmt: skip
        printed = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=60, check=True).stdout
        assert f"  gpt-9-nova: would change 1 (1 in cost), 0 → {NOVA_COST} USD" in printed
        dry = collector.http.post("/api/v1/reprice", params={**window(), "dry_run": "true"}).json()
        assert (dry["rows_seen"], dry["rows_changed"], dry["costs_changed"]) == (3, 2, 1)
        diff = [
            (m["model"], m["rows_changed"], m["costs_changed"], m["old_usd"], m["new_usd"]) for m in dry["by_model"]
        ]
        assert diff == [
            ("gpt-9-nova", 1, 1, "0", NOVA_COST),
            ("gpt-4o-mini", 1, 0, MINI_COST, MINI_COST),  # same rate, the new list's version
        ]  # fmt: skip
        assert stored(collector)["nova-1"] == (None, None)

        done = collector.http.post("/api/v1/reprice", params=window()).json()
        assert done["rows_changed"] == 2
        assert stored(collector) == {
            "mini-1": (MINI_COST, version_of(second)),
            "nova-1": (NOVA_COST, version_of(second)),
            "nova-2": (NOVA_COST, version_of(second)),
        }
        assert collector.get("/api/v1/prices", **window())["unpriced_models"] == []

        # A list that changes a rate: new calls at the new rate, the stored ones untouched until re-priced.
        third = price_file(MINI_DEARER, NOVA)
        server.serve(third)
        wait_for(lambda: prices(collector)["list_version"] == version_of(third), "the list with the dearer rate")
        send(collector, "mini-2", "gpt-4o-mini")
        rows = stored(collector)
        assert (rows["mini-1"], rows["mini-2"]) == (
            (MINI_COST, version_of(second)),
            (MINI_DEARER_COST, version_of(third)),
        )
        done = collector.http.post("/api/v1/reprice", params=window()).json()
        assert [(m["model"], m["costs_changed"], m["old_usd"], m["new_usd"]) for m in done["by_model"]] == [
            ("gpt-4o-mini", 1, MINI_COST, MINI_DEARER_COST),
            ("gpt-9-nova", 0, "0.005000000", "0.005000000"),
        ]  # fmt: skip
        assert stored(collector)["mini-1"] == (MINI_DEARER_COST, version_of(third))

        # Every version's rates are recorded; the lists' rows name them, the data kept for the newest only.
        con = collector.collector.store.reader()
        rates = con.execute(
            "SELECT price_version, model, rates FROM price_rates WHERE model = 'gpt-4o-mini' ORDER BY rates"
        ).fetchall()
        lists = con.execute(
            "SELECT price_version, data IS NOT NULL FROM price_lists ORDER BY fetched_at"
        ).fetchall()  # fmt: skip
        con.close()
        applied = {version: Decimal(json.loads(text)["input"]["usd_per_mtok"]) for version, _, text in rates}
        assert applied == {version_of(first): Decimal("0.15"), version_of(second): Decimal("0.15"),
                           version_of(third): Decimal("0.30")}  # fmt: skip
        assert lists == [(version_of(first), False), (version_of(second), False), (version_of(third), True)]
        assert metric(collector, "new") == 3
    finally:
        collector.stop()


@pytest.mark.parametrize(
    ("serve", "reason", "message"),
    [
        ({"body": b"<html>maintenance</html>"}, "unusable", "not JSON"),
        ({"body": b'[{"id": "acme", "name": "Acme", "api_pattern": "x", "models": []}]'}, "unusable", "no OpenAI"),
        ({"body": b'[{"id": "openai", "models": 5}]'}, "unusable", "not genai-prices' format"),
        ({"body": b"{}", "status": 503}, "http_error", "HTTP 503"),
        ({"body": price_file(MINI_DEARER), "delay_s": 5}, "timeout", "no answer within 0.5 s"),
    ],
)
def test_a_failed_fetch_changes_nothing_and_shows(
    server: PriceServer, tmp_path: Path, serve: dict[str, Any], reason: str, message: str
) -> None:
    good = price_file(MINI)
    collector = updating(tmp_path / "ledger.duckdb", server.url, "--prices-update-timeout", "0.5")
    try:
        wait_for(lambda: prices(collector)["list_version"] == version_of(good), "the good list adopted")
        server.serve(**serve)
        failed = wait_for(lambda: prices(collector)["updates"]["last_error"], "the failure")
        assert message in failed
        status = prices(collector)
        assert status["list_version"] == version_of(good)
        assert status["updates"]["failures_since_success"] >= 1
        assert metric(collector, reason) >= 1
        send(collector, "after", "gpt-4o-mini")
        assert stored(collector)["after"] == (MINI_COST, version_of(good))
        # Fixed upstream: the next fetch succeeds and the failure count starts again.
        server.serve(good)
        wait_for(lambda: prices(collector)["updates"]["failures_since_success"] == 0, "a good fetch again")
        assert prices(collector)["updates"]["last_error"] is None
    finally:
        collector.stop()


def test_a_restart_keeps_the_last_good_list_while_the_server_is_down(server: PriceServer, tmp_path: Path) -> None:
    db = tmp_path / "ledger.duckdb"
    good = price_file(MINI, NOVA)
    server.serve(good)
    first = updating(db, server.url)
    try:
        wait_for(lambda: prices(first)["list_version"] == version_of(good), "the list adopted")
    finally:
        first.stop()
    down = f"http://127.0.0.1:{free_port()}/data.json?token=secret-token"
    second = updating(db, down)
    try:
        status = prices(second)
        assert status["list_version"] == version_of(good)  # before any fetch: kept in the database
        failed = wait_for(lambda: prices(second)["updates"]["last_error"], "the failed fetch")
        assert "could not reach the server" in failed
        assert metric(second, "unreachable") >= 1
        assert metric(second, "adopted") == 1
        assert "secret-token" not in str(prices(second))
        assert "secret-token" not in second.http.get("/metrics").text
        assert prices(second)["list_version"] == version_of(good)
        send(second, "nova", "gpt-9-nova")
        assert stored(second)["nova"] == (NOVA_COST, version_of(good))
    finally:
        second.stop()
    # Without --prices-update the collector prices with the list bundled with genai-prices, offline.
    third = RunningCollector(db)
    try:
        status = prices(third)
        assert (status["bundled"], status["list_version"], status["updates"]) == (
            True,
            pricing.PRICE_VERSION,
            {"enabled": False},
        )
    finally:
        third.stop()


def test_an_alert_on_unpriced_requests_fires_when_an_unknown_model_appears(tmp_path: Path) -> None:
    collector = RunningCollector(tmp_path / "ledger.duckdb", "--alert-interval", "3600")
    try:
        rule = {"name": "a model with no price", "metric": "unpriced_requests", "window": "1h", "op": ">",
                "threshold": 0, "for": "0s", "min_requests": 1}  # fmt: skip
        created = collector.http.post("/api/v1/alert-rules", json=rule)
        assert created.status_code == 201, created.text
        con = collector.collector.store.reader()
        try:
            send(collector, "known", "gpt-4o-mini")
            assert collector.collector.alert_engine.evaluate_once(con, datetime.now(UTC)) == []
            send(collector, "unknown", "gpt-9-nova")
            fired = collector.collector.alert_engine.evaluate_once(con, datetime.now(UTC))
        finally:
            con.close()
        assert fired == [(created.json()["id"], "firing")]
    finally:
        collector.stop()
