"""Reconciliation end to end: spans → a real collector; OpenAI's Costs and Usage APIs played by a local fake in the
real shapes (pages, float amounts, null group keys, dated models) → pulled through the SDK's admin client →
compared per day and model, untracked spend by line item, the alert metric, the CLI and the dashboard page."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx2
import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from collector.alerts.readings import measure
from collector.alerts.rules import parse_rule
from collector.api.auth import Tokens
from collector.reconcile.compare import shares
from dashboard.parts import filters, ui
from llmledger import semconv as sc
from llmledger.testing.fake_openai_admin import COSTS_PATH, USAGE_PATH, CostItem, FakeOpenAIAdmin, UsageItem
from llmledger_cli import main as cli
from tests.collector_harness import RunningCollector
from tests.otlp_spans import alike, chat_attributes, request_with

D1, D2, D3, END = date(2025, 11, 22), date(2025, 11, 23), date(2025, 11, 24), date(2025, 11, 25)
TOKENS = Tokens(ingest="ingest-token", read="read-token", admin="admin-token")
ADMIN_KEY = "sk-admin-Rq7fW2xK9pL4mN8vB3cT6yH1jD5gS0aZ"
APP = Path(__file__).parents[2] / "dashboard" / "app.py"
MINI, MINI_DATED = "gpt-4o-mini", "gpt-4o-mini-2024-07-18"


def at(day: date, hour: int) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC)


def calls(model: str, response_model: str, count: int) -> list[dict[str, Any]]:
    return alike(chat_attributes(**{sc.GEN_AI_REQUEST_MODEL: model, sc.GEN_AI_RESPONSE_MODEL: response_model}), count)


# Our traffic: 1000 input (200 cached) and 100 output tokens per call. D2 has a response model without its date.
OUR_CALLS = {
    D1: calls(MINI, MINI_DATED, 2),
    D2: calls(MINI, MINI, 2) + calls("gpt-4o", "gpt-4o-2024-08-06", 1),
    D3: calls(MINI, MINI_DATED, 1),
}


def client(url: str, token: str) -> httpx2.Client:
    return httpx2.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=60)


@pytest.fixture(scope="module")
def fake_admin() -> Iterator[FakeOpenAIAdmin]:
    with FakeOpenAIAdmin() as fake:
        yield fake


@pytest.fixture(scope="module")
def ledger(fake_admin: FakeOpenAIAdmin, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningCollector]:
    """A collector with tokens, an admin key in a file (on-demand pulls only) and our calls over D1-D3."""
    folder = tmp_path_factory.mktemp("reconcile")
    (folder / "admin-key").write_text(ADMIN_KEY + "\n")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("OPENAI_BASE_URL", fake_admin.base_url)
        env.delenv("OPENAI_ADMIN_KEY", raising=False)
        args = ("--openai-admin-key-file", str(folder / "admin-key"), "--reconcile-interval", "0")
        running = RunningCollector(folder / "ledger.duckdb", *args, tokens=TOKENS)
    try:
        with client(running.url, TOKENS.ingest) as ingest:
            for day, spans in OUR_CALLS.items():
                body = request_with(spans, start_ns=int(at(day, 10).timestamp() * 1e9)).SerializeToString()
                answer = ingest.post("/v1/traces", content=body, headers={"content-type": "application/x-protobuf"})
                assert answer.status_code == 200, answer.text
        yield running
    finally:
        running.stop()


@pytest.fixture
def admin(ledger: RunningCollector) -> Iterator[httpx2.Client]:
    with client(ledger.url, TOKENS.admin) as http:
        yield http


@pytest.fixture(scope="module")
def ours(ledger: RunningCollector) -> dict[tuple[str, str], dict[str, Any]]:
    """Our side per (day, model) as the collector reports it before any pull, checked against /summary per day."""
    with client(ledger.url, TOKENS.read) as read:
        rows = compare(read, by="model")["rows"]
        for day in (D1, D2, D3):
            window = {"from": day.isoformat(), "to": (day + timedelta(days=1)).isoformat()}
            summary = read.get("/api/v1/summary", params=window).json()
            day_rows = [row for row in rows if row["day"] == day.isoformat()]
            assert sum(Decimal(row["our_cost_usd"]) for row in day_rows) == Decimal(summary["cost_usd"]) > 0
            assert sum(row["our_input_tokens"] for row in day_rows) == summary["input_tokens"]
    return {(row["day"], row["model"]): row for row in rows}


def cost(ours: dict[tuple[str, str], dict[str, Any]], day: date, model: str) -> Decimal:
    return Decimal(ours[day.isoformat(), model]["our_cost_usd"])


def scenario(fake: FakeOpenAIAdmin, ours: dict[tuple[str, str], dict[str, Any]]) -> None:
    """OpenAI's side: D1 matches us exactly. D2 adds $0.01 of gpt-4o-mini an uninstrumented app used, an image
    model ($0.04) and a model we never called ($0.05), while gpt-4o cost $0.02 less than our price book says: $0.08
    untracked, net. On D3 OpenAI billed 10% less than we priced."""
    fake.reset()
    fake.page_size = {"costs": 2, "usage": 24}  # 3 daily buckets → 2 pages; 72 hourly buckets → 3 pages
    output = Decimal("0.00012")
    d3_billed = cost(ours, D3, MINI) * Decimal("0.9")
    fake.costs = [
        CostItem(D1, cost(ours, D1, MINI) - output, f"{MINI_DATED}, input"),
        CostItem(D1, output, f"{MINI_DATED}, output"),
        CostItem(D2, cost(ours, D2, MINI) + Decimal("0.01") - output, f"{MINI_DATED}, input"),
        CostItem(D2, output, f"{MINI_DATED}, output", project_id="proj_batchjobs"),
        CostItem(D2, cost(ours, D2, "gpt-4o") - Decimal("0.02"), "gpt-4o-2024-08-06, input"),
        CostItem(D2, Decimal("0.04"), "dall-e-3, 1024x1024 standard", project_id="proj_marketing"),
        CostItem(D2, Decimal("0.05"), "gpt-4.1-2025-04-14, input", project_id="proj_marketing"),
        CostItem(D3, d3_billed, f"{MINI_DATED}, input"),
    ]
    fake.usage = [
        UsageItem(at(D1, 10), MINI_DATED, 2000, 200, 2, input_cached_tokens=400),
        UsageItem(at(D2, 10), MINI_DATED, 2000, 200, 2, service_tier=None, batch=None),  # null group keys
        UsageItem(at(D2, 14), MINI_DATED, 1500, 80, 3, project_id="proj_batchjobs"),
        UsageItem(at(D2, 10), "gpt-4o-2024-08-06", 1000, 100, 1),
        UsageItem(at(D2, 16), "gpt-4.1-2025-04-14", 9000, 700, 4, project_id="proj_marketing"),
        UsageItem(at(D3, 10), MINI_DATED, 1000, 100, 1),
    ]


def pull(http: httpx2.Client, start: date = D1, end: date = END) -> httpx2.Response:
    return http.post("/api/v1/reconcile", params={"from": start.isoformat(), "to": end.isoformat()})


def compare(http: httpx2.Client, by: str = "day", start: date = D1, end: date = END) -> dict[str, Any]:
    answer = http.get("/api/v1/reconciliation", params={"from": start.isoformat(), "to": end.isoformat(), "by": by})
    assert answer.status_code == 200, answer.text
    return answer.json()


def stored_rows(ledger: RunningCollector, table: str) -> dict[str, int]:
    con = ledger.collector.store.reader()
    try:
        rows = con.execute(f"SELECT day, count(*) FROM {table} GROUP BY day").fetchall()
        return {day.isoformat(): count for day, count in rows}
    finally:
        con.close()


@pytest.fixture
def pulled(
    fake_admin: FakeOpenAIAdmin, ours: dict[tuple[str, str], dict[str, Any]], admin: httpx2.Client
) -> dict[str, Any]:
    """The scenario, pulled (a pull replaces its days, so every test starts from the same state)."""
    scenario(fake_admin, ours)
    answer = pull(admin)
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_a_day_never_pulled_is_null_not_zero(ours: dict[tuple[str, str], dict[str, Any]]) -> None:
    assert len(ours) == 4  # D1 and D3 gpt-4o-mini, D2 gpt-4o-mini and gpt-4o: read before any pull
    for row in ours.values():
        assert (row["openai_cost_usd"], row["diff_usd"], row["diff_pct"], row["openai_requests"]) == (None,) * 4


def test_pull_follows_pages_and_compares_per_day(
    pulled: dict[str, Any], fake_admin: FakeOpenAIAdmin, ours: Any, admin: httpx2.Client
) -> None:
    assert (pulled["ok"], pulled["cost_rows"], pulled["usage_rows"]) == (True, 8, 6)
    assert (pulled["from_day"], pulled["to_day"], pulled["trigger"]) == (D1.isoformat(), END.isoformat(), "api")
    for path, count in ((COSTS_PATH, 2), (USAGE_PATH, 3)):
        pages = fake_admin.pages(path)
        assert len(pages) == count
        assert ["page" in page.query for page in pages] == [False] + [True] * (count - 1)
        assert {page.authorization for page in pages} == {f"Bearer {ADMIN_KEY}"}
    costs, usage = fake_admin.pages(COSTS_PATH)[0].query, fake_admin.pages(USAGE_PATH)[0].query
    assert (costs["bucket_width"], costs["group_by[]"]) == (["1d"], ["line_item", "project_id"])
    assert (usage["bucket_width"], usage["group_by[]"]) == (["1h"], ["model", "project_id", "batch", "service_tier"])
    assert costs["start_time"] == [str(int(at(D1, 0).timestamp()))]
    assert costs["end_time"] == [str(int(at(END, 0).timestamp()))]

    rows = {row["day"]: row for row in compare(admin)["rows"]}
    ours_d1, ours_d2, ours_d3 = (
        sum(cost(ours, day, m) for (d, m) in ours if d == day.isoformat()) for day in (D1, D2, D3)
    )
    assert rows[D1.isoformat()] == {
        "day": "2025-11-22", "our_cost_usd": f"{ours_d1:.9f}", "openai_cost_usd": f"{ours_d1:.9f}",
        "diff_usd": "0.000000000", "diff_pct": "0.00", "our_input_tokens": 2000, "openai_input_tokens": 2000,
        "our_output_tokens": 200, "openai_output_tokens": 200, "our_requests": 2, "openai_requests": 2,
        "our_unpriced_requests": 0,
    }  # fmt: skip
    d2 = rows[D2.isoformat()]
    assert Decimal(d2["openai_cost_usd"]) == ours_d2 + Decimal("0.08")
    assert d2["diff_usd"] == "0.080000000"
    assert (d2["openai_input_tokens"], d2["openai_requests"]) == (2000 + 1500 + 1000 + 9000, 2 + 3 + 1 + 4)
    d3 = rows[D3.isoformat()]
    assert Decimal(d3["diff_usd"]) == -ours_d3 / 10
    assert d3["diff_pct"] == "-11.11"


def test_dated_snapshots_match_our_models(pulled: dict[str, Any], ours: Any, admin: httpx2.Client) -> None:
    rows = {(row["day"], row["model"]): row for row in compare(admin, by="model")["rows"]}
    assert set(rows) == {
        ("2025-11-22", MINI), ("2025-11-23", MINI), ("2025-11-23", "gpt-4o"), ("2025-11-23", "gpt-4.1"),
        ("2025-11-23", "dall-e-3"), ("2025-11-24", MINI),
    }  # fmt: skip
    d1 = rows["2025-11-22", MINI]
    assert (d1["our_input_tokens"], d1["our_requests"], d1["diff_usd"]) == (2000, 2, "0.000000000")
    assert (d1["openai_input_tokens"], d1["openai_requests"]) == (2000, 2)
    d2 = rows["2025-11-23", MINI]  # our response model was "gpt-4o-mini", OpenAI's "gpt-4o-mini-2024-07-18"
    assert (d2["our_requests"], d2["openai_requests"], d2["diff_usd"]) == (2, 5, "0.010000000")
    assert rows["2025-11-23", "gpt-4o"]["diff_usd"] == "-0.020000000"
    unseen = rows["2025-11-23", "gpt-4.1"]
    assert (unseen["our_cost_usd"], unseen["openai_cost_usd"], unseen["openai_requests"]) == (
        "0.000000000", "0.050000000", 4,
    )  # fmt: skip


def test_untracked_spend_by_line_item(pulled: dict[str, Any], admin: httpx2.Client) -> None:
    answer = compare(admin)
    assert answer["totals"]["untracked_usd"] == "0.080000000"  # OpenAI's cost minus ours on D2
    lost = answer["untracked"]
    assert {row["day"] for row in lost} == {"2025-11-23"}  # D1 matches; on D3 we counted more, nothing untracked
    by_item = {row["line_item"]: row for row in lost}
    # Before netting: gpt-4.1 $0.05 and images $0.04 (models we never saw), gpt-4o-mini $0.01 (beyond ours); the
    # $0.02 we over-counted on gpt-4o offsets them, so each is scaled by 0.08 / 0.10.
    assert by_item["gpt-4.1-2025-04-14, input"] == {
        "day": "2025-11-23", "line_item": "gpt-4.1-2025-04-14, input", "model": "gpt-4.1", "model_seen": False,
        "kind": "model", "openai_cost_usd": "0.050000000", "untracked_usd": "0.040000000",
    }  # fmt: skip
    images = by_item["dall-e-3, 1024x1024 standard"]
    assert (images["untracked_usd"], images["model_seen"], images["model"]) == ("0.032000000", False, "dall-e-3")
    assert images["kind"] == "model"  # a per-image model's line item: compared with that model's calls
    mini = [row for row in lost if row["model"] == MINI]
    assert {row["model_seen"] for row in mini} == {True}
    assert sum(Decimal(row["untracked_usd"]) for row in mini) == Decimal("0.008")  # shared by input and output
    assert sum(Decimal(row["untracked_usd"]) for row in lost) == Decimal("0.08")
    assert "gpt-4o-2024-08-06, input" not in by_item


def test_amounts_are_parsed_exactly_from_json_floats(
    fake_admin: FakeOpenAIAdmin, admin: httpx2.Client, ledger: RunningCollector
) -> None:
    first, second = date(2025, 10, 1), date(2025, 10, 2)
    fake_admin.reset()
    fake_admin.costs = [
        CostItem(first, "0.1", "gpt-4o-mini-2024-07-18, input"),
        CostItem(first, "0.2", "gpt-4o-mini-2024-07-18, output"),
        # 18 significant digits: as a float it is 123456789.12345679104…, which is .123456791 to the nano-dollar.
        CostItem(second, "123456789.123456789", "fine-tuning, training"),
    ]
    assert pull(admin, first, second + timedelta(days=1)).status_code == 200
    rows = {row["day"]: row for row in compare(admin, start=first, end=second + timedelta(days=1))["rows"]}
    assert rows["2025-10-01"]["openai_cost_usd"] == "0.300000000"
    assert Decimal(rows["2025-10-01"]["openai_cost_usd"]) == Decimal("0.1") + Decimal("0.2")
    assert rows["2025-10-02"]["openai_cost_usd"] == "123456789.123456789"
    assert stored_rows(ledger, "openai_costs")["2025-10-01"] == 2


def test_pulling_again_replaces_the_days_pulled(
    pulled: dict[str, Any], fake_admin: FakeOpenAIAdmin, ours: Any, admin: httpx2.Client, ledger: RunningCollector
) -> None:
    before = compare(admin), compare(admin, by="model")
    costs, usage = stored_rows(ledger, "openai_costs"), stored_rows(ledger, "openai_usage")
    assert pull(admin).status_code == 200
    again = compare(admin), compare(admin, by="model")
    for one, two in zip(before, again, strict=True):
        assert (one["rows"], one["untracked"], one["totals"]) == (two["rows"], two["untracked"], two["totals"])
    assert (stored_rows(ledger, "openai_costs"), stored_rows(ledger, "openai_usage")) == (costs, usage)

    fake_admin.costs = [item for item in fake_admin.costs if not item.line_item.startswith("dall-e")]
    assert pull(admin, D2, D3).status_code == 200  # D2 only
    after = compare(admin)
    assert after["totals"]["untracked_usd"] == "0.040000000"
    assert "dall-e-3, 1024x1024 standard" not in {row["line_item"] for row in after["untracked"]}
    # 0.04 shared 5:1 by gpt-4.1 and gpt-4o-mini: thirds of a nano-dollar, rounded so the parts sum exactly.
    assert sum(Decimal(row["untracked_usd"]) for row in after["untracked"]) == Decimal("0.04")
    assert stored_rows(ledger, "openai_costs") == {**costs, "2025-11-23": costs["2025-11-23"] - 1}
    assert [row for row in after["rows"] if row["day"] != "2025-11-23"] == [
        row for row in before[0]["rows"] if row["day"] != "2025-11-23"
    ]


def test_a_key_without_the_usage_scope_is_a_clear_error(
    pulled: dict[str, Any], fake_admin: FakeOpenAIAdmin, admin: httpx2.Client
) -> None:
    kept = compare(admin)
    for status in (401, 403):
        fake_admin.refuse = status
        answer = pull(admin)
        assert answer.status_code == 502
        run = answer.json()
        assert (run["ok"], run["http_status"]) == (False, status)
        assert "lacks the api.usage.read scope" in run["error"]
        assert "Missing scopes: api.usage.read" in run["error"]  # OpenAI's own words follow
        shown = admin.get("/api/v1/reconcile-runs").json()
        assert shown["configured"] is True
        latest = shown["runs"][0]
        assert (latest["id"], latest["ok"], latest["http_status"], latest["error"]) == (
            run["id"], False, status, run["error"],
        )  # fmt: skip
    assert compare(admin)["rows"] == kept["rows"]  # a failed pull keeps what earlier pulls stored


def test_parameters_and_tokens(ledger: RunningCollector, admin: httpx2.Client) -> None:
    with client(ledger.url, TOKENS.read) as read:
        assert read.post("/api/v1/reconcile").status_code == 403  # pulling is a change: the admin token
        assert read.get("/api/v1/reconcile-runs").status_code == 200
        for params, parameter in (
            ({"by": "week"}, "by"),
            ({"from": "yesterday"}, "from"),
            ({"from": "2025-11-24", "to": "2025-11-22"}, "from"),
            ({"from": "2020-01-01", "to": "2025-01-01"}, "to"),
        ):
            answer = read.get("/api/v1/reconciliation", params=params)
            assert (answer.status_code, answer.json()["parameter"]) == (400, parameter), params
    tomorrow = datetime.now(UTC).date() + timedelta(days=1)
    answer = admin.post("/api/v1/reconcile", params={"from": tomorrow.isoformat()})
    assert (answer.status_code, answer.json()["parameter"]) == (400, "from")


def test_reconciliation_gap_alert(
    pulled: dict[str, Any], ours: Any, admin: httpx2.Client, ledger: RunningCollector
) -> None:
    rule = {"name": "bill gap", "metric": "reconciliation_gap_pct", "window": "day", "op": ">", "threshold": 5}
    today = datetime.now(UTC).date()
    assert pull(admin, today, today + timedelta(days=1)).status_code == 200  # pulled, but not over (OpenAI: $0)
    preview = admin.post("/api/v1/alert-rules/preview", json=rule).json()
    # Today is not complete: every hour of the last week sees the latest complete pulled day, D3 (11.11%).
    assert {round(point["value"], 2) for point in preview["points"]} == {11.11}
    assert len(preview["fired_at"]) == 1
    refused = admin.post("/api/v1/alert-rules", json={**rule, "filters": {"team": "search"}})
    assert (refused.status_code, refused.json()["field"]) == (422, "filters")
    rule_id = admin.post("/api/v1/alert-rules", json=rule).json()["id"]
    try:
        con = ledger.collector.store.reader()
        changes = ledger.collector.alert_engine.evaluate_once(con, datetime.now(UTC))
        assert (rule_id, "firing") in changes
        month = parse_rule({**rule, "window": "month"})
        ours_total = sum(
            cost(ours, day, model) for (day, model) in [(D1, MINI), (D2, MINI), (D2, "gpt-4o"), (D3, MINI)]
        )
        billed = ours_total + Decimal("0.08") - cost(ours, D3, MINI) / 10
        value, requests = measure(con, month, at(END, 6) + timedelta(days=5))  # Nov 2025: D1-D3, complete
        assert value == pytest.approx(float(abs(billed - ours_total) * 100 / billed))
        assert requests == 6
        # An hour of D3: D3 is not over, so the latest complete day, D2 ($0.08 more billed than we saw).
        value, requests = measure(con, parse_rule({**rule, "window": "1h"}), at(D3, 23))
        billed_d2 = cost(ours, D2, MINI) + cost(ours, D2, "gpt-4o") + Decimal("0.08")
        assert (value, requests) == (pytest.approx(float(Decimal("0.08") * 100 / billed_d2)), 3)
        # Two days on, today has ended but was pulled before it did: not used until pulled again. Still D3.
        value, _ = measure(con, parse_rule({**rule, "window": "1h"}), datetime.now(UTC) + timedelta(days=2))
        assert value == pytest.approx(100 / 9)
        con.close()
    finally:
        admin.delete(f"/api/v1/alert-rules/{rule_id}")


def test_cli_pulls_and_prints_the_comparison(
    pulled: dict[str, Any],
    fake_admin: FakeOpenAIAdmin,
    ledger: RunningCollector,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    (tmp_path / "admin").write_text(TOKENS.admin)
    (tmp_path / "read").write_text(TOKENS.read)
    base = ["reconcile", "--api", ledger.url, "--from", D1.isoformat(), "--to", END.isoformat()]
    assert cli.main([*base, "--token-file", str(tmp_path / "admin")]) == 0
    out = capsys.readouterr().out
    assert "pulled 2025-11-22 up to 2025-11-25 (exclusive) from OpenAI: 8 cost rows, 6 usage rows" in out
    assert "untracked spend (billed by OpenAI, seen by no instrumented call): 0.080000000" in out
    assert "dall-e-3, 1024x1024 standard" in out
    assert [line.split()[0] for line in out.splitlines() if line.startswith("2025-11-2")] == [
        "2025-11-22", "2025-11-23", "2025-11-24",
    ]  # fmt: skip

    assert cli.main([*base, "--token-file", str(tmp_path / "read")]) == 1
    assert "answered 403" in capsys.readouterr().err
    fake_admin.refuse = 401
    assert cli.main([*base, "--token-file", str(tmp_path / "admin")]) == 1
    assert "lacks the api.usage.read scope" in capsys.readouterr().err


def run_page(monkeypatch: pytest.MonkeyPatch, url: str, today: date = D3) -> AppTest:
    monkeypatch.setenv("LLMLEDGER_API_URL", url)
    monkeypatch.setenv("LLMLEDGER_ADMIN_TOKEN", TOKENS.admin)
    monkeypatch.setattr(filters, "now_utc", lambda: at(today, 18))
    st.cache_data.clear()
    app = AppTest.from_file(APP, default_timeout=60)
    app.run()
    app.switch_page("views/reconciliation.py").run()
    assert not app.exception, [item.value for item in app.exception]
    return app


def test_dashboard_page(
    pulled: dict[str, Any],
    fake_admin: FakeOpenAIAdmin,
    ledger: RunningCollector,
    admin: httpx2.Client,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    totals = compare(admin, start=D3 - timedelta(days=13), end=END)["totals"]
    page = run_page(monkeypatch, ledger.url)
    shown = {metric.label: metric.value for metric in page.metric}
    assert shown["Ours (price book)"] == ui.usd(totals["our_cost_usd"])
    assert shown["OpenAI (billed)"] == ui.usd(totals["openai_cost_usd"])
    assert shown["Untracked spend"] == "$0.0800"
    assert any("Untracked spend: $0.0800" in item.value for item in page.warning)
    per_day, lost, per_model = (frame.value for frame in page.dataframe)
    assert list(per_day["Day"]) == ["2025-11-22", "2025-11-23", "2025-11-24"]
    assert list(per_day["Gap (USD)"]) == ["0.000000000", "0.080000000", compare(admin)["rows"][2]["diff_usd"]]
    assert "dall-e-3, 1024x1024 standard" in set(lost["Line item"])
    assert "gpt-4.1" in set(per_model["Model"])
    assert not page.error
    assert any(caption.value.startswith("Last pull: ") for caption in page.caption)

    page.button(key="reconcile_pull").click().run()
    assert any("Pulled 8 cost rows and 6 usage rows" in item.value for item in page.success)

    fake_admin.refuse = 403
    assert pull(admin).status_code == 502
    page = run_page(monkeypatch, ledger.url)
    assert any("lacks the api.usage.read scope" in item.value for item in page.error)
    assert page.metric  # what earlier pulls stored is still shown


def test_without_a_key_pulls_say_how_to_set_one(
    fake_admin: FakeOpenAIAdmin, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPENAI_ADMIN_KEY", raising=False)
    keyless = RunningCollector(tmp_path / "keyless.duckdb")
    try:
        answer = keyless.http.post("/api/v1/reconcile")
        assert answer.status_code == 409
        assert {"OPENAI_ADMIN_KEY", "--openai-admin-key-file"} <= set(answer.json()["error"].split())
        assert keyless.get("/api/v1/reconcile-runs") == {
            "configured": False,
            "interval_s": None,
            "pull_days": 3,
            "runs": [],
        }
        page = run_page(monkeypatch, keyless.url)
        assert any("no OpenAI admin key" in item.value for item in page.info)
        assert any("OPENAI_ADMIN_KEY" in block.value for block in page.code)
    finally:
        keyless.stop()


def test_scheduled_pull_and_the_key_is_never_logged_or_stored(
    fake_admin: FakeOpenAIAdmin, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    fake_admin.reset()
    fake_admin.refuse_echoing_key = True  # OpenAI quotes a key it does not accept
    monkeypatch.setenv("OPENAI_ADMIN_KEY", ADMIN_KEY)
    monkeypatch.setenv("OPENAI_BASE_URL", fake_admin.base_url)
    running = RunningCollector(tmp_path / "scheduled.duckdb", "--reconcile-interval", "3600")
    try:
        deadline = time.monotonic() + 20
        while not (runs := running.get("/api/v1/reconcile-runs")["runs"]) and time.monotonic() < deadline:
            time.sleep(0.05)
        (scheduled,) = runs
        today = datetime.now(UTC).date()
        assert (scheduled["trigger"], scheduled["ok"], scheduled["http_status"]) == ("schedule", False, 401)
        assert (scheduled["from_day"], scheduled["to_day"]) == (
            (today - timedelta(days=2)).isoformat(), (today + timedelta(days=1)).isoformat(),
        )  # fmt: skip
        assert "[REDACTED_KEY]" in scheduled["error"]
        fake_admin.refuse_echoing_key = False
        fake_admin.costs = [CostItem(D1, "1.5", "tts-1")]
        day = {"from": D1.isoformat(), "to": D2.isoformat()}
        assert running.http.post("/api/v1/reconcile", params=day).status_code == 200
        assert running.get("/api/v1/reconciliation", **day)["totals"]["openai_cost_usd"] == "1.500000000"
        answers = running.http.get("/api/v1/reconcile-runs").text + running.http.get("/metrics").text
    finally:
        running.stop()
    assert {request.authorization for request in fake_admin.requests} == {f"Bearer {ADMIN_KEY}"}  # it was used
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "reconciliation: pulling" in logged  # the failure was logged, scrubbed
    for secret in (ADMIN_KEY, ADMIN_KEY[-12:]):
        assert secret not in logged
        assert secret not in answers
        assert secret.encode() not in Path(running.args.db).read_bytes()


@pytest.mark.parametrize("total", [Decimal("0.00000001"), Decimal("-0.00000001"), Decimal("-2.000000005"),
                                   Decimal("3.333333334")])  # fmt: skip
def test_shares_add_up_to_the_total_whatever_its_sign(total: Decimal) -> None:
    """A chargeback's spread is negative when our priced calls exceed the bill: its shares must still sum to it."""
    parts = shares([Decimal(1), Decimal(1), Decimal(1)], total)
    assert sum(parts, Decimal(0)) == total
    assert max(parts) - min(parts) <= Decimal("0.000000001")
