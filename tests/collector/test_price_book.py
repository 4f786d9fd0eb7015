"""The collector's price book against figures worked out by hand from OpenAI's published rates (per million
tokens, as genai-prices 0.2.3 lists them), through the real ingest path: every tier, batch, long context,
cached and cache-write input, audio, unknown models, tier fallback, negotiated overrides with effective dates,
historical prices by start time, the rates recorded per price version, and re-pricing."""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from collector.money.overrides import OverridesError, PriceOverrides
from llmledger import pricing
from llmledger import semconv as sc
from tests.collector_harness import RunningCollector
from tests.otlp_spans import chat_attributes, request_with

ROOT = Path(__file__).resolve().parents[2]
PROTOBUF = {"content-type": "application/x-protobuf"}
NOV_20 = datetime(2026, 11, 20, 12, tzinfo=UTC)
OCT_01 = datetime(2026, 10, 1, 12, tzinfo=UTC)
OCT_20 = datetime(2026, 10, 20, 12, tzinfo=UTC)

# (request id, when, attributes, expected cost_usd, expected price_tier_fallback). Each expected figure is
# tokens x USD per million tokens / 1e6, worked out by hand in the comment beside it.
CASES: list[tuple[str, datetime, dict[str, Any], str | None, bool | None]] = [
    # gpt-4o-mini default: 800 x 0.15 + 200 cached x 0.075 + 100 x 0.60 = 195
    ("mini-default", NOV_20, {"model": "gpt-4o-mini", "in": 1000, "cached": 200, "out": 100}, "0.000195000", False),
    # Batch API (flagged by the wrapper; the response says default): 1000 x 0.075 + 100 x 0.30 = 105
    ("mini-batch", NOV_20, {"model": "gpt-4o-mini", "in": 1000, "out": 100, "batch": True}, "0.000105000", False),
    # gpt-5-mini flex: 1000 x 0.125 + 1000 cached x 0.0125 + 500 (300 of them reasoning) x 1.00 = 637.5
    ("flex", NOV_20, {"model": "gpt-5-mini", "in": 2000, "cached": 1000, "out": 500, "reasoning": 300,
                      "tier": "flex"}, "0.000637500", False),
    # gpt-4o priority: 1000 x 4.25 + 100 x 17 = 5950; `fast` is priority
    ("priority", NOV_20, {"model": "gpt-4o", "in": 1000, "out": 100, "tier": "priority"}, "0.005950000", False),
    ("fast", NOV_20, {"model": "gpt-4o", "in": 1000, "out": 100, "tier": "fast"}, "0.005950000", False),
    # Before gpt-4o's priority prices start (2026-10-12) there is no priority rate: standard 1000 x 2.5 + 100 x 10
    ("priority-before", OCT_01, {"model": "gpt-4o", "in": 1000, "out": 100, "tier": "priority"}, "0.003500000", True),
    # gpt-4o-mini has no flex rate: standard 1000 x 0.15 + 100 x 0.60 = 210, marked as a fallback
    ("mini-flex", NOV_20, {"model": "gpt-4o-mini", "in": 1000, "out": 100, "tier": "flex"}, "0.000210000", True),
    # gpt-5.6-luna above 272K input: every token at the higher rate: 150000 x 0.4 + 100000 cached x 0.04
    # + 50000 cache-write x 0.5 + 1000 x 1.8 = 60000 + 4000 + 25000 + 1800 = 90800
    ("long", NOV_20, {"model": "gpt-5.6-luna", "in": 300_000, "cached": 100_000, "write": 50_000, "out": 1000},
     "0.090800000", False),
    # ... and at 200K input the base rates: 200000 x 0.2 + 1000 x 1.2 = 41200
    ("short", NOV_20, {"model": "gpt-5.6-luna", "in": 200_000, "out": 1000}, "0.041200000", False),
    # gpt-audio: text 400 x 2.5 + audio 600 x 32 + text out 100 x 10 + audio out 400 x 64 = 46800
    ("audio", NOV_20, {"model": "gpt-audio", "in": 1000, "audio_in": 600, "out": 500, "audio_out": 400},
     "0.046800000", False),
    # scale tier is pre-paid units: stored, never priced per token
    ("scale", NOV_20, {"model": "gpt-4o", "in": 1000, "out": 100, "tier": "scale"}, None, None),
    # an unknown model is unpriced, never 0
    ("unknown", NOV_20, {"model": "acme-llm-7", "in": 1000, "out": 100}, None, None),
]  # fmt: skip


def attributes(request_id: str, spec: dict[str, Any]) -> dict[str, Any]:
    return chat_attributes(
        **{
            sc.REQUEST_ID: request_id,
            sc.GEN_AI_REQUEST_MODEL: spec["model"],
            sc.GEN_AI_RESPONSE_MODEL: spec["model"],
            sc.GEN_AI_USAGE_INPUT_TOKENS: spec["in"],
            sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS: spec.get("cached", 0),
            sc.GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS: spec.get("write"),
            sc.GEN_AI_USAGE_OUTPUT_TOKENS: spec["out"],
            sc.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS: spec.get("reasoning", 0),
            sc.GEN_AI_USAGE_AUDIO_INPUT_TOKENS: spec.get("audio_in"),
            sc.GEN_AI_USAGE_AUDIO_OUTPUT_TOKENS: spec.get("audio_out"),
            sc.OPENAI_RESPONSE_SERVICE_TIER: spec.get("tier", "default"),
            sc.BATCH: spec.get("batch"),
            sc.GEN_AI_USAGE_COST_AMOUNT: None,
        }
    )


def send(collector: RunningCollector, request_id: str, when: datetime, attrs: dict[str, Any]) -> None:
    body = request_with([attrs], start_ns=int(when.timestamp() * 1e9)).SerializeToString()
    assert collector.http.post("/v1/traces", content=body, headers=PROTOBUF).status_code == 200


def stored(collector: RunningCollector) -> dict[str, dict[str, Any]]:
    calls = collector.get("/api/v1/calls", limit="1000", **{"from": "2026-01-01"})["calls"]
    return {call["request_id"]: call for call in calls}


@pytest.fixture
def collector(tmp_path: Path) -> Iterator[RunningCollector]:
    running = RunningCollector(tmp_path / "prices.duckdb")
    yield running
    running.stop()


def test_every_tier_and_token_kind_against_hand_figures(collector: RunningCollector) -> None:
    for request_id, when, spec, _, _ in CASES:
        send(collector, request_id, when, attributes(request_id, spec))
    rows = stored(collector)
    for request_id, _, _, cost, fallback in CASES:
        row = rows[request_id]
        assert row["cost_usd"] == cost, request_id
        assert row["price_tier_fallback"] is fallback, request_id
        assert row["cost_source"] == ("collector" if cost else None), request_id
        assert row["price_version"] == (pricing.PRICE_VERSION if cost else None), request_id
    assert rows["audio"]["input_audio_tokens"] == 600
    summary = collector.get("/api/v1/summary", **{"from": "2026-01-01"})
    assert (summary["unpriced_requests"], summary["tier_fallback_requests"]) == (2, 2)


def test_an_override_covers_both_forms_of_snapshot_name(tmp_path: Path) -> None:
    (tmp_path / "prices.toml").write_text('[[price]]\nmodel = "gpt-4"\nfrom = 2026-01-01\ndiscount_pct = 5\n')
    book = PriceOverrides.load(tmp_path / "prices.toml")
    for model in ("gpt-4", "gpt-4-0613", "gpt-4-2024-04-09"):
        assert book.find(model, "default", False, NOV_20.date()) is not None, model
    assert book.find("gpt-4o", "default", False, NOV_20.date()) is None


def test_fast_and_priority_share_rates_whichever_comes_first() -> None:
    from collector.money.price_book import PriceBook

    book = PriceBook()
    fast = book.rates("gpt-4o", "fast", False, NOV_20)
    assert book.rates("gpt-4o", "priority", False, NOV_20) is fast
    assert fast == pricing.rates_for("gpt-4o", "priority", False, NOV_20)
    assert fast.output.base == Decimal("0.000017")  # $17 per million


def test_a_span_cost_is_kept_beside_and_used_only_for_unknown_models(collector: RunningCollector) -> None:
    known = {**attributes("known", CASES[0][2]), sc.GEN_AI_USAGE_COST_AMOUNT: 0.5}
    unknown = {**attributes("unknown", CASES[-1][2]), sc.GEN_AI_USAGE_COST_AMOUNT: 0.0123}
    send(collector, "known", NOV_20, known)
    send(collector, "unknown", NOV_20, unknown)
    rows = stored(collector)
    assert (rows["known"]["cost_usd"], rows["known"]["span_cost_usd"]) == ("0.000195000", "0.500000000")
    assert (rows["unknown"]["cost_usd"], rows["unknown"]["cost_source"]) == ("0.012300000", "span")


OVERRIDES = """
# Negotiated from November: gpt-4o-mini (and its snapshots) cheaper; 10% off everything else on default tier.
[[price]]
model = "gpt-4o-mini"
from = 2026-11-01
input = 0.10
output = 0.40

[[price]]
model = "*"
from = 2026-11-10
discount_pct = 10
tier = "default"
"""


def test_overrides_with_effective_dates_and_repricing(tmp_path: Path) -> None:
    db = tmp_path / "ledger.duckdb"
    first = RunningCollector(db)
    mini = {"model": "gpt-4o-mini", "in": 1000, "cached": 200, "out": 100}
    four_o = {"model": "gpt-4o", "in": 1000, "out": 100}
    for request_id, when, spec in (
        ("mini-oct", OCT_20, mini),
        ("mini-nov", NOV_20, {**mini, "model": "gpt-4o-mini-2024-07-18"}),
        ("4o-nov", NOV_20, four_o),
        ("4o-nov-priority", NOV_20, {**four_o, "tier": "priority"}),
    ):
        send(first, request_id, when, attributes(request_id, spec))
    before = {key: row["cost_usd"] for key, row in stored(first).items()}
    first.stop()

    (tmp_path / "prices.toml").write_text(OVERRIDES)
    book = PriceOverrides.load(tmp_path / "prices.toml")
    version = book.version(pricing.PRICE_VERSION)
    assert version.startswith("genai-prices==0.2.3+supplement.2026-12+overrides.")
    second = RunningCollector(db, "--prices", str(tmp_path / "prices.toml"))
    try:
        # New calls are priced with the overrides at once.
        send(second, "mini-new", NOV_20, attributes("mini-new", mini))
        # 800 x 0.10 + 200 cached x 0.075 (list: no override given) + 100 x 0.40 = 135
        assert stored(second)["mini-new"]["cost_usd"] == "0.000135000"
        assert stored(second)["mini-new"]["price_version"] == version
        # Cached-input savings at the negotiated input rate: 200 cached x (0.10 - 0.075 list cached) = 5 (not
        # the 15 that list rates would give).
        by_model = second.get("/api/v1/breakdown", group_by="model", **{"from": "2026-11-15", "to": "2026-11-25"})
        mini = next(group for group in by_model["groups"] if group["group"] == "gpt-4o-mini")
        assert mini["cached_input_savings_usd"] == "0.000005000"

        window = {"from": "2026-10-01", "to": "2026-12-01"}
        dry = second.http.post("/api/v1/reprice", params={**window, "dry_run": "true"}).json()
        # Two costs change; two more rows only take the new price version (October's call, and the priority
        # call the discount doesn't cover); the call made after the restart is priced already.
        assert (dry["rows_seen"], dry["rows_changed"], dry["costs_changed"], dry["dry_run"]) == (5, 4, 2, True)
        assert {key: row["cost_usd"] for key, row in stored(second).items() if key != "mini-new"} == before

        done = second.http.post("/api/v1/reprice", params=window).json()
        assert (done["rows_changed"], done["costs_changed"]) == (4, 2)
        # old: 0.000195 + 0.000195 + 0.0035 + 0.00595 + 0.000135 = 0.009975
        # new: 0.000195 (October: before the override) + 0.000135 + 0.00315 (10% off 0.0035) + 0.00595 (the
        # discount is for the default tier only) + 0.000135 = 0.009565
        assert (done["old_total_usd"], done["new_total_usd"]) == ("0.009975000", "0.009565000")
        assert done["difference_usd"] == "-0.000410000"
        rows = stored(second)
        assert rows["mini-oct"]["cost_usd"] == "0.000195000"
        assert rows["mini-nov"]["cost_usd"] == "0.000135000"  # the snapshot name matches its family's override
        assert rows["4o-nov"]["cost_usd"] == "0.003150000"
        assert rows["4o-nov-priority"]["price_version"] == version

        again = second.http.post("/api/v1/reprice", params=window).json()
        assert again["rows_changed"] == 0  # idempotent
        finance = csv.DictReader(io.StringIO(second.http.get("/api/v1/export.csv", params=window).text))
        assert sum(Decimal(row["cost_usd"]) for row in finance) == Decimal("0.009565000")  # the rollup follows
        assert second.get("/api/v1/summary", **window)["cost_usd"] == "0.009565000"  # and so does the hourly one
        runs = second.get("/api/v1/reprice-runs")["runs"]
        assert [(run["dry_run"], run["rows_changed"]) for run in runs] == [(False, 0), (False, 4), (True, 4)]

        rates = (
            second.collector.store.reader()
            .execute(
                "SELECT model, service_tier, batch, source, rates FROM price_rates WHERE price_version = ? "
                "AND day = DATE '2026-11-20' ORDER BY model, service_tier",
                [version],
            )
            .fetchall()
        )
        assert [row[:4] for row in rates] == [
            ("gpt-4o", "default", False, "override"),
            ("gpt-4o", "priority", False, "list"),
            ("gpt-4o-mini", "default", False, "override"),
            ("gpt-4o-mini-2024-07-18", "default", False, "override"),
        ]
        assert '"input": {"above_input_tokens": [], "usd_per_mtok": "0.100000' in rates[2][4]
        assert second.http.post("/api/v1/reprice", params={"from": "2026-10-01"}).json()["parameter"] == "to"
    finally:
        second.stop()


def test_the_cli_reprices(tmp_path: Path, collector: RunningCollector) -> None:
    send(collector, "one", NOV_20, attributes("one", CASES[0][2]))
    command = [sys.executable, "-m", "llmledger_cli", "reprice", "--api", collector.url, "--from", "2026-11-01",
               "--to", "2026-12-01", "--dry-run"]  # fmt: skip
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=60, env=os.environ.copy())
    assert result.returncode == 0, result.stderr
    assert f"1 calls priced with {pricing.PRICE_VERSION}: would change 0 (0 in cost)" in result.stdout


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[[price]]\nmodel = 'gpt-4o'\nfrom = 2026-01-01\n", "give either rates"),
        ("[[price]]\nmodel = 'gpt-4o'\nfrom = 2026-01-01\ninput = 1\ndiscount_pct = 5\n", "not both"),
        ("[[price]]\nmodel = 'gpt-4o'\nfrom = '2026-01-01'\ninput = 1\n", "'from' must be a date"),
        ("[[price]]\nmodel = 'gpt-4o'\nfrom = 2026-01-01\ninput = -1\n", "non-negative"),
        ("[[price]]\nmodel = 'gpt-4o'\nfrom = 2026-01-01\ninptu = 1\n", "unknown field 'inptu'"),
        ("[[price]]\nmodel = 'gpt-4o'\nfrom = 2026-01-01\ndiscount_pct = 120\n", "between 0 and 100"),
        ("[[price]]\nmodel = 'gpt-4o'\nfrom = 2026-01-01\ninput = 1\ntier = 'gold'\n", "'tier' must be one of"),
        ("[[price]]\nmodel = 'gpt-4o'\nfrom = 2026-01-01\ninput = 1\nprovider = 5\n", "'provider' must name"),
        ("[[prices]]\nmodel = 'gpt-4o'\n", "unknown table 'prices'"),
        ("[[price]\n", "not valid TOML"),
    ],
)
def test_a_bad_overrides_file_says_what_is_wrong(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "prices.toml").write_text(text)
    with pytest.raises(OverridesError, match=message):
        PriceOverrides.load(tmp_path / "prices.toml")


def test_the_collector_refuses_to_start_with_a_bad_overrides_file(tmp_path: Path) -> None:
    (tmp_path / "prices.toml").write_text("[[price]]\nmodel = 'gpt-4o'\n")
    command = [sys.executable, "-m", "llmledger_cli", "collector", "--db", str(tmp_path / "x.duckdb"), "--port", "1",
               "--prices", str(tmp_path / "prices.toml")]  # fmt: skip
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "'from' must be a date" in result.stderr
