"""The Alerts page, run by AppTest against a real collector: list, create (and the API's 422), delete, firing."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from dashboard.data import alerts_client
from dashboard.parts import ui
from llmledger import semconv as sc
from tests.collector_harness import RunningCollector
from tests.dashboard.alerts_page import APP, PAGE, evaluate, ok, page, rule_body, send, stored_channels, submit, texts


def test_empty_list(running: RunningCollector) -> None:
    at = page()
    assert "No alert rules yet" in texts(at.info)
    assert "No state changes yet" in texts(at.caption)
    assert not at.error


def test_create_rule_through_the_form(running: RunningCollector) -> None:
    at = page()
    at.selectbox(key="alert_new_metric").select("error_rate")
    at.selectbox(key="alert_new_window").select("24h")
    at.selectbox(key="alert_new_op").select(">=")
    at = submit(at, name="Search errors", threshold="0.25", filter_team="search, discovery", **{"for": "5m"})
    assert not at.error, texts(at.error)
    assert "Created rule 'Search errors'" in texts(at.success)
    [stored] = running.get("/api/v1/alert-rules")["rules"]
    assert {
        key: stored[key] for key in ("name", "metric", "window", "op", "threshold", "for", "filters", "enabled")
    } == {
        "name": "Search errors",
        "metric": "error_rate",
        "window": "24h",
        "op": ">=",
        "threshold": 0.25,
        "for": "300s",
        "filters": {"team": ["search", "discovery"]},
        "enabled": True,
    }
    listed = at.dataframe[0].value
    assert list(listed["Rule"]) == ["Search errors"]
    assert list(listed["Condition"]) == ["error_rate >= 0.25 over 24h for 300s"]


@pytest.mark.parametrize(
    ("values", "field"),
    [({"name": "x", "threshold": "high"}, "threshold"), ({"name": "", "threshold": "1"}, "name")],
)
def test_invalid_rule_shows_the_apis_message(running: RunningCollector, values: dict[str, str], field: str) -> None:
    at = submit(page(), **values)
    shown = texts(at.error)
    assert shown.startswith(f"{field}: "), shown
    response = running.http.post(
        "/api/v1/alert-rules",
        json=rule_body(**{**values, "threshold": values["threshold"] if field == "threshold" else 1}),
    )
    assert response.status_code == 422
    assert response.json()["error"] in shown
    assert running.get("/api/v1/alert-rules")["rules"] == []


def test_disable_and_delete(running: RunningCollector) -> None:
    rule_id = running.http.post("/api/v1/alert-rules", json=rule_body(name="quiet")).json()["id"]
    at = page()
    assert list(at.dataframe[0].value["Rule"]) == ["quiet"]
    at.button(key="alert_toggle").click().run()
    ok(at)
    assert running.get(f"/api/v1/alert-rules/{rule_id}")["enabled"] is False
    assert list(at.dataframe[0].value["Enabled"]) == [False]
    assert at.button(key="alert_toggle").label == "Enable"
    at.button(key="alert_delete").click().run()
    ok(at)
    assert running.get("/api/v1/alert-rules")["rules"] == []
    assert "No alert rules yet" in texts(at.info)


def test_toggling_a_rule_keeps_its_stored_channel_url(running: RunningCollector) -> None:
    channel = {"type": "webhook", "url": "http://127.0.0.1:9/hooks/secret"}
    rule_id = running.http.post("/api/v1/alert-rules", json=rule_body(channels=[channel])).json()["id"]
    at = page()
    at.button(key="alert_toggle").click().run()
    ok(at)
    shown = running.get(f"/api/v1/alert-rules/{rule_id}")
    assert shown["enabled"] is False
    assert shown["channels"] == [{"type": "webhook", "url": "http://127.0.0.1/•••1"}]
    assert stored_channels(running, rule_id) == [channel]


def test_firing_rule_is_first_and_its_event_listed(running: RunningCollector) -> None:
    send(running, 3, **{sc.ERROR_TYPE: "RateLimitError", sc.HTTP_RESPONSE_STATUS_CODE: 429})
    running.http.post("/api/v1/alert-rules", json=rule_body(name="calm", metric="requests", threshold=1000))
    fire_id = running.http.post("/api/v1/alert-rules", json=rule_body(name="boom")).json()["id"]
    con = running.collector.store.reader()
    try:
        fired = running.collector.alert_engine.evaluate_once(con, datetime.now(UTC))
    finally:
        con.close()
    assert fired == [(fire_id, "firing")]
    at = page()
    assert "Firing (1): boom" in texts(at.error)
    rules, events = at.dataframe[0].value, at.dataframe[1].value
    assert list(rules["Rule"]) == ["boom", "calm"]
    assert list(rules["State"]) == ["🔴 firing", "🟢 ok"]
    assert list(rules["Value"]) == [3.0, 5.0]
    assert list(events["Rule"]) == ["boom"]
    assert list(events["To"]) == ["🔴 firing"]


def month_spend(running: RunningCollector, **filters: str) -> Decimal:
    now = datetime.now(UTC)
    start = datetime(now.year, now.month, 1, tzinfo=UTC)
    return Decimal(running.get("/api/v1/summary", **{"from": start.isoformat(), **filters})["cost_usd"])


FORECAST = re.compile(r"forecast \$([\d,.]+) by month end \((\d+)% of \$1,000\.00\)")


def test_overview_shows_firing_alerts_and_budgets(running: RunningCollector) -> None:
    send(running, 3, **{sc.ERROR_TYPE: "RateLimitError", sc.HTTP_RESPONSE_STATUS_CODE: 429})
    running.http.post("/api/v1/alert-rules", json=rule_body(name="boom"))
    budget = rule_body(name="monthly", metric="cost", window="month", op=">=", threshold=1000)
    running.http.post("/api/v1/alert-rules", json=budget)
    evaluate(running)
    spent = month_spend(running)
    assert spent > 0
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    ok(at)
    assert "Firing (1): **boom**" in texts(at.error)
    spend_bar, forecast_bar = at.get("progress")
    assert spend_bar.proto.text.startswith(f"Budget monthly: spent {ui.usd(spent)} this month (0% of $1,000.00)")
    forecast = FORECAST.search(forecast_bar.proto.text)
    assert forecast_bar.proto.text.startswith("Budget monthly: forecast"), forecast_bar.proto.text
    assert forecast is not None, forecast_bar.proto.text
    assert Decimal(forecast.group(1).replace(",", "")) >= spent  # the month is not over: the pace adds to it


def test_budgets_on_the_alerts_page_watch_their_own_calls(running: RunningCollector) -> None:
    """Spend and forecast for each budget rule (cost per UTC day/month, or the month's forecast), with its filters."""
    rules = [
        rule_body(name="search month", metric="cost", window="month", op=">", threshold=1000,
                  filters={"team": ["search"]}),
        rule_body(name="nobody today", metric="cost", window="day", threshold=5, filters={"team": ["nobody"]}),
        rule_body(name="forecast", metric="cost_forecast_month", window="month", threshold=0),
        rule_body(name="not a budget", metric="cost", window="1h", threshold=5),
        rule_body(name="falling", metric="cost", window="month", op="<", threshold=5),
    ]  # fmt: skip
    for body in rules:
        assert running.http.post("/api/v1/alert-rules", json=body).status_code == 201
    at = page()
    shown = [bar.proto.text for bar in at.get("progress")]
    assert len(shown) == 6, shown
    spent = ui.usd(month_spend(running, team="search"))
    assert shown[0].startswith(f"search month: spent {spent} this month (0% of $1,000.00)"), shown[0]
    assert FORECAST.search(shown[1]), shown[1]
    assert shown[2:4] == [
        "nobody today: spent $0.00 today (0% of $5.00)",
        "nobody today: forecast $0.00 by the end of the day (0% of $5.00)",
    ]
    assert shown[4].startswith(f"forecast: spent {ui.usd(month_spend(running))} this month (— of $0.00)")
    assert shown[4].endswith(" — over the limit")
    assert shown[5].startswith("forecast: forecast $")


def test_budget_forecast_is_the_pace_so_far_to_the_end_of_the_period() -> None:
    """The collector's cost_forecast_month formula: spend so far divided by the elapsed part of the period."""
    now = datetime(2026, 12, 11, 6, 0, tzinfo=UTC)
    month = alerts_client.period_bounds("month", now)
    assert month == (datetime(2026, 12, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC))
    assert alerts_client.projection(Decimal("41"), *month, now) == Decimal("124")  # 10¼ of December's 31 days gone
    day = alerts_client.period_bounds("day", now)
    assert day == (datetime(2026, 12, 11, tzinfo=UTC), datetime(2026, 12, 12, tzinfo=UTC))
    assert alerts_client.projection(Decimal("2.5"), *day, now) == Decimal("10")
    # The page's now is rounded up to the minute: in a period's last minute it is the next one's start, and the
    # budget is still the period that is ending (a window from the next midnight to itself would be refused).
    midnight = datetime(2027, 1, 1, tzinfo=UTC)
    assert alerts_client.period_bounds("day", midnight) == (datetime(2026, 12, 31, tzinfo=UTC), midnight)
    assert alerts_client.period_bounds("month", midnight) == (datetime(2026, 12, 1, tzinfo=UTC), midnight)
    budget = alerts_client.Budget("team", "month", ">=", Decimal(100), Decimal(40), Decimal(124), unpriced=2)
    assert budget.bars() == [
        (0.4, "team: spent $40.00 this month (40% of $100.00); 2 unpriced calls not included"),
        (1.0, "team: forecast $124.00 by month end (124% of $100.00) — on course to exceed it"),
    ]


@pytest.mark.parametrize(
    ("changes", "period"),
    [
        ({"metric": "cost", "window": "day"}, "day"),
        ({"metric": "cost", "window": "month", "op": ">="}, "month"),
        ({"metric": "cost_forecast_month", "window": "month"}, "month"),
        ({"metric": "cost", "window": "24h"}, None),
        ({"metric": "cost", "window": "month", "op": "<"}, None),
        ({"metric": "requests", "window": "day"}, None),
    ],
)
def test_which_rules_are_budgets(changes: dict[str, str], period: str | None) -> None:
    assert alerts_client.budget_period(rule_body(**changes)) == period


def test_preview_draws_the_draft_and_when_it_would_fire(running: RunningCollector) -> None:
    send(running, 3, **{sc.ERROR_TYPE: "RateLimitError", sc.HTTP_RESPONSE_STATUS_CODE: 429})
    at = page()
    at.text_input(key="alert_new_name").input("draft")
    at.selectbox(key="alert_new_metric").select("errors")
    at.selectbox(key="alert_new_window").select("1h")
    at.text_input(key="alert_new_threshold").input("0")
    at.button(key="alert_new_preview_button").click().run()
    ok(at)
    assert "would have fired 1 time(s)" in texts(at.markdown)
    assert running.get("/api/v1/alert-rules")["rules"] == []


def test_send_test_notification_button(running: RunningCollector) -> None:
    channel = {"type": "webhook", "url": "http://127.0.0.1:9/hooks/secret"}
    running.http.post("/api/v1/alert-rules", json=rule_body(name="noisy", channels=[channel]))
    at = page()
    at.button(key="alert_test").click().run()
    ok(at)
    assert "Test notification sent to 1 channel(s)" in texts(at.success)


def test_rules_can_be_set_up_before_any_call(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    empty = RunningCollector(tmp_path / "empty.duckdb", "--alert-interval", "3600")
    monkeypatch.setenv("LLMLEDGER_API_URL", empty.url)
    st.cache_data.clear()
    try:
        at = page()
        assert "No alert rules yet" in texts(at.info)
        submit(at, name="first", threshold="10")
        assert [rule["name"] for rule in empty.get("/api/v1/alert-rules")["rules"]] == ["first"]
    finally:
        st.cache_data.clear()
        empty.stop()


def start_editing(at: AppTest, rule_id: int) -> AppTest:
    at.selectbox(key="alert_manage_rule").select(rule_id).run()
    at.button(key="alert_edit").click().run()
    ok(at)
    return at


def save(at: AppTest) -> AppTest:
    at.button(key="alert_edit_submit").click().run()
    ok(at)
    return at


SHOWN = ("name", "metric", "window", "op", "threshold", "for", "filters", "enabled", "min_requests", "channels")


def test_edit_a_rule_in_the_create_forms_fields(running: RunningCollector) -> None:
    running.http.post("/api/v1/alert-rules", json=rule_body(name="other"))
    original = rule_body(name="slow search", metric="latency_p95_ms", window="24h", op=">=", threshold=1500.5,
                         filters={"team": ["search", "ads"]}, min_requests=20, **{"for": "10m"})  # fmt: skip
    rule_id = running.http.post("/api/v1/alert-rules", json=original).json()["id"]
    at = start_editing(page(), rule_id)
    assert at.subheader[1].value == f"Edit rule 'slow search' (id {rule_id})"
    prefilled = {key: at.text_input(key=f"alert_edit_{key}").value for key in ("name", "threshold", "for")}
    assert prefilled == {"name": "slow search", "threshold": "1500.5", "for": "600s"}
    assert [at.selectbox(key=f"alert_edit_{key}").value for key in ("metric", "window", "op")] == [
        "latency_p95_ms", "24h", ">=",
    ]  # fmt: skip
    assert at.text_input(key="alert_edit_filter_team").value == "search, ads"
    assert at.number_input(key="alert_edit_min_requests").value == 20
    assert at.text_input(key="alert_new_name").value == ""  # the create form stays a blank draft

    at.text_input(key="alert_edit_name").input("slow search p99")
    at.selectbox(key="alert_edit_metric").select("latency_p99_ms")
    at.text_input(key="alert_edit_threshold").input("2000")
    at.text_input(key="alert_edit_filter_team").input("search")
    at = save(at)
    assert "Saved rule 'slow search p99'" in texts(at.success)
    shown = running.get(f"/api/v1/alert-rules/{rule_id}")
    assert {key: shown[key] for key in SHOWN} == {
        **{key: original[key] for key in SHOWN if key in original},
        "name": "slow search p99",
        "metric": "latency_p99_ms",
        "threshold": 2000.0,
        "for": "600s",
        "filters": {"team": ["search"]},
        "enabled": True,
        "channels": [],
    }
    assert running.get("/api/v1/alert-rules")["rules"][0]["name"] == "other"  # the other rule is untouched
    assert "alert_edit_name" not in at.session_state  # saved: the edit form is closed
    listed = at.dataframe[0].value.set_index("id")
    assert listed.loc[rule_id, "Condition"] == "latency_p99_ms >= 2000 over 24h for 600s (min 20 requests)"


def test_edit_shows_the_apis_422_beside_the_form_and_keeps_the_draft(running: RunningCollector) -> None:
    rule_id = running.http.post("/api/v1/alert-rules", json=rule_body(name="kept")).json()["id"]
    at = start_editing(page(), rule_id)
    at.selectbox(key="alert_edit_metric").select("cost_forecast_month")
    at.text_input(key="alert_edit_threshold").input("12")
    at = save(at)
    message = running.http.put(
        f"/api/v1/alert-rules/{rule_id}", json=rule_body(name="kept", metric="cost_forecast_month", threshold=12)
    ).json()["error"]
    assert texts(at.error) == f"window: {message}"
    assert at.text_input(key="alert_edit_threshold").value == "12"  # still editing, draft intact
    at.selectbox(key="alert_edit_window").select("month")
    at = save(at)
    assert not at.error, texts(at.error)
    shown = running.get(f"/api/v1/alert-rules/{rule_id}")
    assert (shown["metric"], shown["window"], shown["threshold"]) == ("cost_forecast_month", "month", 12.0)


def test_editing_keeps_replaces_removes_and_adds_channels(running: RunningCollector) -> None:
    channels = [
        {"type": "webhook", "url": "http://127.0.0.1:9/hooks/first-secret"},
        {"type": "slack", "url": "https://hooks.slack.test/services/second-secret"},
        {"type": "webhook", "url": "http://127.0.0.1:9/hooks/third-secret"},
    ]
    rule_id = running.http.post("/api/v1/alert-rules", json=rule_body(channels=channels)).json()["id"]
    at = start_editing(page(), rule_id)
    at.text_input(key="alert_edit_threshold").input("7")
    at = save(at)  # every channel left blank: all kept
    assert running.get(f"/api/v1/alert-rules/{rule_id}")["threshold"] == 7.0
    assert stored_channels(running, rule_id) == channels

    at = start_editing(at, rule_id)
    at.text_input(key="alert_edit_channel_url_0").input("http://127.0.0.1:9/hooks/new-secret")
    at.checkbox(key="alert_edit_channel_remove_1").check()
    at.text_input(key="alert_edit_channel_url_3").input("https://hooks.slack.test/services/added")
    at.selectbox(key="alert_edit_channel_type_3").select("slack")
    at = save(at)
    assert not at.error, texts(at.error)
    assert stored_channels(running, rule_id) == [
        {"type": "webhook", "url": "http://127.0.0.1:9/hooks/new-secret"},
        channels[2],
        {"type": "slack", "url": "https://hooks.slack.test/services/added"},
    ]


def test_preview_the_edited_draft_without_saving_it(running: RunningCollector) -> None:
    send(running, 3, **{sc.ERROR_TYPE: "RateLimitError", sc.HTTP_RESPONSE_STATUS_CODE: 429})
    channel = {"type": "webhook", "url": "http://127.0.0.1:9/hooks/secret"}
    rule_id = running.http.post("/api/v1/alert-rules", json=rule_body(threshold=100, channels=[channel])).json()["id"]
    at = start_editing(page(), rule_id)
    preview = "alert_edit_preview_button"
    at.button(key=preview).click().run()
    ok(at)
    assert "**Preview of errors** over the last 7 days (hourly): would not have fired." in texts(at.markdown)
    at.text_input(key="alert_edit_threshold").input("2")
    at.button(key=preview).click().run()  # the channel URL was not re-entered: a preview needs none
    ok(at)
    assert not at.error, texts(at.error)
    assert "would have fired 1 time(s)" in texts(at.markdown)
    assert running.get(f"/api/v1/alert-rules/{rule_id}")["threshold"] == 100.0
    assert stored_channels(running, rule_id) == [channel]


def test_cancel_and_delete_close_the_edit_form(running: RunningCollector) -> None:
    rule_id = running.http.post("/api/v1/alert-rules", json=rule_body(name="short-lived")).json()["id"]
    at = start_editing(page(), rule_id)
    at.text_input(key="alert_edit_name").input("never saved")
    at.button(key="alert_edit_cancel").click().run()
    ok(at)
    assert "alert_edit_name" not in at.session_state
    assert running.get(f"/api/v1/alert-rules/{rule_id}")["name"] == "short-lived"
    at = start_editing(at, rule_id)
    assert at.text_input(key="alert_edit_name").value == "short-lived"  # editing again starts from the stored rule
    at.button(key="alert_delete").click().run()
    ok(at)
    assert "alert_edit_name" not in at.session_state
    assert running.get("/api/v1/alert-rules")["rules"] == []


def test_an_edit_left_for_another_page_comes_back_filled(running: RunningCollector) -> None:
    rule_id = running.http.post("/api/v1/alert-rules", json=rule_body(name="away", threshold=3)).json()["id"]
    at = start_editing(page(), rule_id)
    at.switch_page("views/overview.py").run()
    ok(at)
    at.switch_page(PAGE).run()
    ok(at)
    assert at.text_input(key="alert_edit_name").value == "away"
    assert at.text_input(key="alert_edit_threshold").value == "3"


def test_create_an_enforced_budget_through_the_form(running: RunningCollector) -> None:
    at = page()
    at.selectbox(key="alert_new_metric").select("cost")
    at.selectbox(key="alert_new_window").select("day")
    at.selectbox(key="alert_new_enforce_action").select("downgrade")
    at = submit(at, name="search budget", threshold="5", filter_team="search", enforce_downgrade_to="gpt-17-imaginary")
    assert texts(at.error).startswith("enforce: unknown model for downgrade: 'gpt-17-imaginary'"), texts(at.error)
    assert running.get("/api/v1/alert-rules")["rules"] == []

    at = submit(at, enforce_downgrade_to="gpt-4o-mini")
    assert not at.error, texts(at.error)
    [stored] = running.get("/api/v1/alert-rules")["rules"]
    assert (stored["metric"], stored["window"], stored["filters"]) == ("cost", "day", {"team": ["search"]})
    assert stored["enforce"] == {"action": "downgrade", "downgrade_to": "gpt-4o-mini"}
    assert list(at.dataframe[0].value["Condition"]) == ["cost > 5 over day; enforced: downgrade to gpt-4o-mini"]
    budgets = running.get("/api/v1/guard/budgets")["budgets"]
    assert [(budget["id"], budget["action"]) for budget in budgets] == [(stored["id"], "downgrade")]


def test_enforce_is_refused_on_a_rule_that_is_no_budget(running: RunningCollector) -> None:
    at = page()
    at.selectbox(key="alert_new_enforce_action").select("block")  # on the default metric, cost over 5m
    at = submit(at, name="not a budget", threshold="5")
    assert texts(at.error).startswith("enforce: a budget is per UTC day or month"), texts(at.error)
    assert running.get("/api/v1/alert-rules")["rules"] == []


def test_edit_and_toggle_keep_or_change_the_enforce_part(running: RunningCollector) -> None:
    body = rule_body(name="monthly", metric="cost", window="month", op=">=", threshold=100,
                     enforce={"action": "downgrade", "downgrade_to": "gpt-4o-mini"})  # fmt: skip
    rule_id = running.http.post("/api/v1/alert-rules", json=body).json()["id"]
    at = page()
    at.button(key="alert_toggle").click().run()  # disable: the PUT keeps enforce
    ok(at)
    shown = running.get(f"/api/v1/alert-rules/{rule_id}")
    assert (shown["enabled"], shown["enforce"]) == (False, body["enforce"])

    at = start_editing(at, rule_id)
    assert at.selectbox(key="alert_edit_enforce_action").value == "downgrade"
    assert at.text_input(key="alert_edit_enforce_downgrade_to").value == "gpt-4o-mini"
    at.selectbox(key="alert_edit_enforce_action").select("warn")
    at.text_input(key="alert_edit_enforce_downgrade_to").input("")
    at = save(at)
    assert not at.error, texts(at.error)
    assert running.get(f"/api/v1/alert-rules/{rule_id}")["enforce"] == {"action": "warn", "downgrade_to": None}

    at = start_editing(at, rule_id)
    at.selectbox(key="alert_edit_enforce_action").select("off")
    at = save(at)
    assert running.get(f"/api/v1/alert-rules/{rule_id}")["enforce"] is None
