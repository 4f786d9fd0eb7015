"""The FOCUS downloads, the Chargeback page and the SQL page, run by AppTest against a real collector holding the
demo's sample data, reconciled with the fake OpenAI bill of the same traffic."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from dashboard.data import finance_client, sql_client
from dashboard.parts import filters, result_chart
from dashboard.views import chargeback
from llmledger.testing.fake_openai_admin import FakeOpenAIAdmin
from llmledger_cli.load import load_file
from llmledger_cli.up import bill_and_reconcile
from sample_data import DEMO_FILE
from tests.collector_harness import RunningCollector

APP = Path(__file__).parents[2] / "dashboard" / "app.py"
NOW = datetime.now(UTC).replace(microsecond=0)
CENT = Decimal("0.01")


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningCollector, FakeOpenAIAdmin]]:
    folder = tmp_path_factory.mktemp("finance-pages")
    (folder / "admin-key").write_text("sk-admin-test")
    openai_bill = FakeOpenAIAdmin().start()
    collector = RunningCollector(
        folder / "demo.duckdb", "--openai-admin-key-file", str(folder / "admin-key"), "--openai-base-url",
        openai_bill.base_url,
    )  # fmt: skip
    bill_and_reconcile(openai_bill, collector.url, load_file(DEMO_FILE, collector.url).shift, token=None)
    try:
        yield collector, openai_bill
    finally:
        collector.stop()
        openai_bill.stop()


@pytest.fixture(autouse=True)
def fresh(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(filters, "now_utc", lambda: NOW)
    for name in ("LLMLEDGER_READ_TOKEN", "LLMLEDGER_READ_TOKEN_FILE", "LLMLEDGER_ADMIN_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    st.cache_data.clear()
    yield
    st.cache_data.clear()


def run(api: str, monkeypatch: pytest.MonkeyPatch, page: str, **query: Any) -> AppTest:
    monkeypatch.setenv("LLMLEDGER_API_URL", api)
    at = AppTest.from_file(APP, default_timeout=120)
    at.query_params.update(query)
    at.run()
    at.switch_page(page).run()
    assert not at.exception, [item.value for item in at.exception]
    return at


def charts_drawn(at: AppTest) -> list[dict[str, Any]]:
    return [json.loads(chart.proto.spec) for chart in at.get("vega_lite_chart")]


# FOCUS on the Exports page


def test_whole_utc_days_cover_the_range() -> None:
    at = datetime(2026, 3, 1, tzinfo=UTC)
    assert finance_client.whole_days(at, at + timedelta(days=7)) == (date(2026, 3, 1), date(2026, 3, 8))
    assert finance_client.whole_days(at + timedelta(hours=5), at + timedelta(days=2, minutes=1)) == (
        date(2026, 3, 1), date(2026, 3, 4),
    )  # fmt: skip
    assert finance_client.whole_days(at, at + timedelta(minutes=1)) == (date(2026, 3, 1), date(2026, 3, 2))


def test_exports_offer_focus_as_csv_and_parquet_for_the_days_of_the_range(
    demo: tuple[RunningCollector, FakeOpenAIAdmin], monkeypatch: pytest.MonkeyPatch
) -> None:
    collector, _ = demo
    at = run(collector.url, monkeypatch, "views/exports.py", range="7d")
    buttons = at.get("download_button")
    assert [button.proto.label for button in buttons] == [
        "Download finance CSV", "Download FOCUS CSV", "Download FOCUS Parquet", "Download calls CSV",
    ]  # fmt: skip
    first, last = finance_client.whole_days(NOW - timedelta(days=7), NOW)
    assert (first, last) == (NOW.date() - timedelta(days=7), NOW.date() + timedelta(days=1))
    command = next(block.value for block in at.code if "/api/v1/export/focus" in block.value)
    assert f"/api/v1/export/focus?from={first}&to={last}&format=csv" in command
    # What the buttons fetch when pressed: the API's file for those days, in each format.
    shown = finance_client.focus_export(collector.url, None, first, last, "csv")
    direct = collector.http.get("/api/v1/export/focus", params={"from": str(first), "to": str(last)})
    assert shown == direct.content
    rows = list(csv.DictReader(io.StringIO(shown.decode())))
    assert rows
    assert {row["BillingCurrency"] for row in rows} == {"USD"}
    assert finance_client.focus_export(collector.url, None, first, last, "parquet")[:4] == b"PAR1"


def test_a_range_longer_than_a_focus_file_covers_says_so(
    demo: tuple[RunningCollector, FakeOpenAIAdmin], monkeypatch: pytest.MonkeyPatch
) -> None:
    collector, _ = demo
    dates = [(NOW.date() - timedelta(days=400)).isoformat(), NOW.date().isoformat()]
    at = run(collector.url, monkeypatch, "views/exports.py", range="Custom", dates=dates)
    assert any("at most 366 days" in item.value for item in at.info)
    assert [button.proto.label for button in at.get("download_button")] == [
        "Download finance CSV", "Download calls CSV",
    ]  # fmt: skip


# Chargeback


def _month_bounds(month: str) -> tuple[date, date]:
    first = date.fromisoformat(month + "-01")
    return first, (first + timedelta(days=32)).replace(day=1)


def test_chargeback_adds_up_to_the_months_bill_apart_or_allocated(
    demo: tuple[RunningCollector, FakeOpenAIAdmin], monkeypatch: pytest.MonkeyPatch
) -> None:
    collector, openai_bill = demo
    at = run(collector.url, monkeypatch, "views/chargeback.py")
    month = at.selectbox(key="chargeback_month").value
    assert month == chargeback.months(NOW.date())[1]  # the month before this one, closed and reconciled
    first, following = _month_bounds(month)
    billed = sum((Decimal(item.amount) for item in openai_bill.costs if first <= item.day < following), Decimal(0))
    focus = list(csv.DictReader(io.StringIO(collector.http.get(
        "/api/v1/export/focus", params={"from": str(first), "to": str(following)}
    ).text)))  # fmt: skip
    others = sum((Decimal(row["BilledCost"]) for row in focus if row["x_Provider"] != "openai"), Decimal(0))
    assert billed > 0

    for allocate in ("apart", "proportional"):
        at.radio(key="chargeback_allocate").set_value(allocate).run()
        assert not at.exception, [item.value for item in at.exception]
        report = collector.get("/api/v1/chargeback", month=month, allocate=allocate)
        table = at.dataframe[0].value
        teams, total = table.iloc[:-1], table.iloc[-1]
        assert list(teams["Team"]) == [team["team"] for team in report["teams"]]
        assert list(teams["Cost (USD)"]) == [team["cost_usd"] for team in report["teams"]]
        assert total["Team"] == chargeback.TOTAL
        assert Decimal(total["Cost (USD)"]) == sum((Decimal(cost) for cost in teams["Cost (USD)"]), Decimal(0))
        # OpenAI's rows are its bill once reconciled; other providers' calls are what they cost.
        assert (Decimal(total["Cost (USD)"]) - others).quantize(CENT) == billed.quantize(CENT), allocate
        assert at.metric[0].value == f"${Decimal(report['total_usd']):,.2f}"
        (drawn,) = charts_drawn(at)
        assert drawn["mark"]["type"] == "bar"
        names = set(teams["Team"])
        if allocate == "apart":
            assert "(untracked)" in names
        else:
            assert not names & {"(untracked)", "(unattributed)"}
            assert Decimal(total["Unattributed + untracked (USD)"]) > 0
    assert [button.proto.label for button in at.get("download_button")] == ["Download chargeback CSV"]
    csv_rows = list(
        csv.DictReader(io.StringIO(finance_client.chargeback_csv(collector.url, None, month, "apart").decode()))
    )
    assert sum(Decimal(row["cost_usd"]) for row in csv_rows) == Decimal(
        collector.get("/api/v1/chargeback", month=month, allocate="apart")["total_usd"]
    )


def test_a_month_without_cost_says_so(demo: tuple[RunningCollector, FakeOpenAIAdmin], monkeypatch) -> None:
    collector, _ = demo
    at = run(collector.url, monkeypatch, "views/chargeback.py")
    at.selectbox(key="chargeback_month").set_value(chargeback.months(NOW.date())[-1]).run()  # a year ago
    assert any("No cost in" in item.value for item in at.info)
    assert not at.dataframe


# SQL


def test_the_example_query_runs_into_a_table_and_a_line_over_time(
    demo: tuple[RunningCollector, FakeOpenAIAdmin], monkeypatch: pytest.MonkeyPatch
) -> None:
    collector, _ = demo
    at = run(collector.url, monkeypatch, "views/sql.py")
    assert not at.dataframe  # nothing runs before Run is pressed
    at.button(key="sql_run").click().run()
    assert not at.exception, [item.value for item in at.exception]
    answer = collector.http.post("/api/v1/sql", json={"sql": at.text_area(key="sql_text").value}).json()
    table = at.dataframe[0].value
    assert list(table.columns) == ["day", "cost_usd", "requests"]
    assert list(table["day"]) == [row[0] for row in answer["rows"]]
    assert list(table["cost_usd"]) == [row[1] for row in answer["rows"]]  # exact decimal strings
    assert list(table["requests"]) == [row[2] for row in answer["rows"]]
    (drawn,) = charts_drawn(at)
    assert (drawn["mark"]["type"], drawn["encoding"]["x"]["type"], drawn["encoding"]["y"]["title"]) == (
        "line", "temporal", "cost_usd",
    )  # fmt: skip


def test_a_query_by_category_is_a_bar_chart_and_one_without_numbers_has_none(
    demo: tuple[RunningCollector, FakeOpenAIAdmin], monkeypatch: pytest.MonkeyPatch
) -> None:
    collector, _ = demo
    at = run(collector.url, monkeypatch, "views/sql.py")
    at.text_area(key="sql_text").input(
        "SELECT team, service, count(*) AS calls FROM llm_calls GROUP BY ALL ORDER BY calls DESC"
    ).run()
    at.button(key="sql_run").click().run()
    (drawn,) = charts_drawn(at)
    assert (drawn["mark"]["type"], drawn["encoding"]["x"]["title"], drawn["encoding"]["color"]["title"]) == (
        "bar", "team", "service",
    )  # fmt: skip
    at.text_area(key="sql_text").input("SELECT DISTINCT service FROM llm_calls").run()
    at.button(key="sql_run").click().run()
    assert at.dataframe
    assert not charts_drawn(at)
    assert any("No chart" in item.value for item in at.caption)


@pytest.mark.parametrize(
    ("statement", "shown"),
    [
        ("DELETE FROM llm_calls", "The collector refused the query: A DELETE statement is not allowed"),
        ("SELECT * FROM read_csv('/etc/passwd')", "The collector refused the query:"),
        ("SELECT * FROM alert_rules", "The collector refused the query:"),
    ],
)
def test_a_refused_query_shows_the_collectors_reason(
    demo: tuple[RunningCollector, FakeOpenAIAdmin], monkeypatch: pytest.MonkeyPatch, statement: str, shown: str
) -> None:
    collector, _ = demo
    at = run(collector.url, monkeypatch, "views/sql.py")
    at.text_area(key="sql_text").input(statement).run()
    at.button(key="sql_run").click().run()
    refused = collector.http.post("/api/v1/sql", json={"sql": statement}).json()["error"]
    assert [item.value for item in at.error] == [f"The collector refused the query: {refused}"]
    assert shown in at.error[0].value
    assert not at.dataframe


def test_a_query_past_the_time_limit_says_it_was_cancelled(
    demo: tuple[RunningCollector, FakeOpenAIAdmin], monkeypatch: pytest.MonkeyPatch
) -> None:
    collector, _ = demo
    at = run(collector.url, monkeypatch, "views/sql.py")
    at.text_area(key="sql_text").input(
        "SELECT count(*) FROM range(100000000) a, range(100000000) b WHERE a.range < b.range"
    ).run()
    at.button(key="sql_run").click().run()
    assert [item.value for item in at.error] == [
        "The query was cancelled: it ran past the 10 s limit. Narrow it (a WHERE on start_time or day) or aggregate "
        "llm_calls_daily instead of llm_calls."
    ]


def test_save_load_and_delete_a_query(
    demo: tuple[RunningCollector, FakeOpenAIAdmin], monkeypatch: pytest.MonkeyPatch
) -> None:
    collector, _ = demo
    statement = (
        "SELECT request_model AS model, sum(cost_usd) AS cost FROM llm_calls_daily GROUP BY 1 ORDER BY cost DESC"
    )
    at = run(collector.url, monkeypatch, "views/sql.py")
    at.text_area(key="sql_text").input(statement).run()
    at.text_input(key="sql_save_name").input("cost by model").run()
    at.button(key="sql_save").click().run()
    assert [item.value for item in at.success] == ["Saved 'cost by model'."]
    (stored,) = collector.get("/api/v1/sql/saved")["queries"]
    assert (stored["name"], stored["sql"]) == ("cost by model", statement)
    assert at.selectbox(key="sql_saved").value == stored["id"]

    again = run(collector.url, monkeypatch, "views/sql.py")  # another session loads it from the collector
    again.selectbox(key="sql_saved").set_value(stored["id"]).run()
    assert again.text_area(key="sql_text").value == statement
    again.button(key="sql_run").click().run()
    assert list(again.dataframe[0].value.columns) == ["model", "cost"]
    again.text_input(key="sql_save_name").input("cost by model").run()
    again.button(key="sql_save").click().run()  # the name is taken
    assert [item.value for item in again.error] == [
        "Not saved: The collector answered 409 (name): a query named 'cost by model' is already saved"
    ]
    again.button(key="sql_delete").click().run()
    assert [item.value for item in again.success] == ["Deleted 'cost by model'."]
    assert collector.get("/api/v1/sql/saved")["queries"] == []
    assert again.selectbox(key="sql_saved").value is None


def test_a_statement_that_is_not_one_select_is_not_saved(
    demo: tuple[RunningCollector, FakeOpenAIAdmin], monkeypatch: pytest.MonkeyPatch
) -> None:
    collector, _ = demo
    at = run(collector.url, monkeypatch, "views/sql.py")
    at.text_area(key="sql_text").input("SELECT 1; DROP TABLE llm_calls").run()
    at.text_input(key="sql_save_name").input("sneaky").run()
    at.button(key="sql_save").click().run()
    assert [item.value for item in at.error] == [
        "Not saved: The collector answered 422 (sql): The SQL holds 2 statements: send exactly one per request"
    ]
    assert collector.get("/api/v1/sql/saved")["queries"] == []


def test_result_charts_follow_the_column_types() -> None:
    def chosen(**types: str) -> tuple[str, str, str, str | None] | None:
        found = result_chart.axes(types)
        return None if found is None else (found.x, found.y, found.mark, found.color)

    assert chosen(day="DATE", cost="DECIMAL(38,9)") == ("day", "cost", "line", None)
    assert chosen(n="BIGINT", team="VARCHAR", hour="TIMESTAMP WITH TIME ZONE", svc="VARCHAR") == (
        "team", "n", "bar", "svc",
    )  # fmt: skip
    assert chosen(team="VARCHAR", model="VARCHAR") is None
    assert chosen(n="BIGINT") is None
    rows = pd.DataFrame({"day": ["2026-01-02", "2026-01-01"], "cost": ["1.500000000", "0.25"]}, dtype="object")
    spec = result_chart.chart(rows, result_chart.Axes("day", "cost", "line", None)).to_dict()
    (values,) = spec["datasets"].values()
    assert [value["y"] for value in values] == [0.25, 1.5]  # sorted by time, decimals charted as numbers
    assert [sql_client.is_numeric("HUGEINT"), sql_client.is_temporal("DATE"), sql_client.is_text("VARCHAR")] == [
        True
    ] * 3
