"""The Alerts page's newer parts, run by AppTest against a real collector: anomaly, no-data and grouped rules with a
warning level, each channel type's fields, the 422 beside the field it names, silences, acknowledgements, and the
preview's band and per-group panels."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

import pyarrow as pa
import pytest
from streamlit.testing.v1 import AppTest
from streamlit.testing.v1.element_tree import Block

from collector.alerts.rules import CHANNEL_TYPES
from dashboard.parts.alerts import channels
from llmledger import semconv as sc
from tests.collector_harness import RunningCollector
from tests.dashboard.alerts_page import (
    PROTOBUF,
    evaluate,
    ok,
    page,
    rule_body,
    send,
    stored_channels,
    texts,
)
from tests.otlp_spans import chat_attributes, request_with

TEAMS_URL = "https://example.webhook.office.com/webhookb2/team-secret"


def new(at: AppTest, **values: Any) -> AppTest:
    """Set the create form's widgets (by key suffix; selects by option), one run each so fields that depend on the
    kind or a channel's type are drawn before they are filled."""
    for name, value in values.items():
        key = f"alert_new_{name}"
        found = [element for element in _widgets(at.main) if getattr(element, "key", None) == key]
        assert found, f"no widget {key}"
        element = found[0]
        if element.type == "selectbox":
            element.select(value)
        elif element.type == "checkbox":
            element.check() if value else element.uncheck()
        else:
            element.set_value(value)
        at.run()
        ok(at)
    return at


def _widgets(node: Any) -> Iterator[Any]:
    for child in getattr(node, "children", {}).values():
        if isinstance(child, Block):
            yield from _widgets(child)
        else:
            yield child


def _blocks(node: Any) -> Iterator[Block]:
    for child in getattr(node, "children", {}).values():
        if isinstance(child, Block):
            yield child
            yield from _blocks(child)


def keys(block: Any) -> set[str]:
    return {widget.key for widget in _widgets(block) if getattr(widget, "key", None)}


def error_beside(at: AppTest, key: str) -> str:
    """The errors drawn in the innermost block (a column, a channel's box) holding the widget `key` that shows any;
    checked to be the field's own, not the whole form (which holds the name too)."""
    holders = [block for block in _blocks(at.main) if key in keys(block) and block.error]
    if not holders:
        return ""
    assert "alert_new_name" not in keys(holders[-1]) or key == "alert_new_name", "drawn for the whole form"
    return texts(holders[-1].error)


def create(at: AppTest) -> AppTest:
    at.button(key="alert_new_submit").click().run()
    ok(at)
    return at


def only_rule(running: RunningCollector) -> dict[str, Any]:
    [rule] = running.get("/api/v1/alert-rules")["rules"]
    return rule


def test_every_channel_type_has_its_fields() -> None:
    assert set(channels.FIELDS) == set(CHANNEL_TYPES)


def test_create_a_per_team_anomaly_rule_with_a_teams_channel(running: RunningCollector) -> None:
    at = new(page(), name="search spike", kind="anomaly")
    at = new(at, metric="requests", baseline="rolling_median", sensitivity=4.0, group_by="team", max_groups=10,
             channel_type_0="teams")  # fmt: skip
    secret = at.text_input(key="alert_new_channel_url_0")
    assert secret.proto.type == secret.proto.PASSWORD
    assert not [w for w in _widgets(at.main) if getattr(w, "key", None) == "alert_new_threshold"]  # not an anomaly's
    at = create(new(at, channel_url_0=TEAMS_URL))
    assert not at.error, texts(at.error)
    rule = only_rule(running)
    assert {
        key: rule[key]
        for key in (
            "name",
            "kind",
            "metric",
            "window",
            "op",
            "group_by",
            "max_groups",
            "baseline",
            "sensitivity",
            "warning_threshold",
            "channels",
        )
    } == {
        "name": "search spike",
        "kind": "anomaly",
        "metric": "requests",
        "window": "1h",
        "op": ">",
        "group_by": "team",
        "max_groups": 10,
        "baseline": "rolling_median",
        "sensitivity": 4.0,
        "warning_threshold": None,
        "channels": [{"type": "teams", "url": "https://example.webhook.office.com/•••1"}],
    }
    assert stored_channels(running, rule["id"]) == [{"type": "teams", "url": TEAMS_URL}]
    listed = at.dataframe[0].value
    assert list(listed["Condition"]) == ["requests > rolling_median band (sensitivity 4) over 1h, per team (max 10)"]


def test_create_a_no_data_rule(running: RunningCollector) -> None:
    at = new(page(), name="checkout silent", kind="no_data")
    at = create(new(at, no_data_window="45m", filter_service="checkout", group_by="environment", **{"for": "5m"}))
    assert not at.error, texts(at.error)
    rule = only_rule(running)
    assert {
        key: rule[key] for key in ("kind", "metric", "op", "threshold", "window", "filters", "group_by", "for")
    } == {
        "kind": "no_data",
        "metric": "requests",
        "op": "<=",
        "threshold": 0.0,
        "window": "45m",
        "filters": {"service": ["checkout"]},
        "group_by": "environment",
        "for": "300s",
    }
    assert list(at.dataframe[0].value["Condition"]) == ["no calls for 45m, per environment (max 50) for 300s"]


def test_create_a_grouped_threshold_rule_with_a_warning_level(running: RunningCollector) -> None:
    at = new(page(), name="user spend", metric="cost", window="day", threshold="10", warning_threshold="5")
    at = create(new(at, group_by="end_user", max_groups=25))
    assert not at.error, texts(at.error)
    rule = only_rule(running)
    assert (rule["kind"], rule["threshold"], rule["warning_threshold"], rule["group_by"], rule["max_groups"]) == (
        "threshold", 10.0, 5.0, "end_user", 25,
    )  # fmt: skip
    assert list(at.dataframe[0].value["Condition"]) == ["cost > 10 over day (warning at 5), per end_user (max 25)"]


@pytest.mark.parametrize(
    ("values", "key", "field"),
    [
        ({"threshold": "10", "warning_threshold": "20"}, "alert_new_warning_threshold", "warning_threshold"),
        ({"kind": "no_data", "no_data_window": "7m"}, "alert_new_no_data_window", "window"),
        ({"kind": "anomaly", "metric": "cost", "sensitivity": 0.0}, "alert_new_sensitivity", "sensitivity"),
        (
            {"threshold": "1", "channel_type_0": "email", "channel_host_0": "smtp.example.com"},
            "alert_new_channel_host_0",
            "channels",
        ),
    ],
)
def test_a_422_is_shown_beside_the_field_it_names(
    running: RunningCollector, values: dict[str, Any], key: str, field: str
) -> None:
    at = create(new(page(), name="refused", **values))
    shown = error_beside(at, key)
    assert shown.startswith(f"{field}: "), (shown, texts(at.error))
    assert texts(at.error) == shown  # drawn once, there
    assert running.get("/api/v1/alert-rules")["rules"] == []


def test_an_email_channels_password_is_kept_when_left_blank(running: RunningCollector) -> None:
    email = {"type": "email", "host": "smtp.example.com", "port": 587, "username": "alerts", "password": "hunter2-pw",
             "from": "alerts@example.com", "to": ["oncall@example.com"], "starttls": True}  # fmt: skip
    rule_id = running.http.post("/api/v1/alert-rules", json=rule_body(channels=[email])).json()["id"]
    at = page()
    at.selectbox(key="alert_manage_rule").select(rule_id).run()
    at.button(key="alert_edit").click().run()
    ok(at)
    password = at.text_input(key="alert_edit_channel_password_0")
    assert (password.value, password.proto.type) == ("", password.proto.PASSWORD)
    assert password.placeholder.startswith("•••1")
    assert at.text_input(key="alert_edit_channel_host_0").value == "smtp.example.com"
    at.text_input(key="alert_edit_channel_to_0").input("oncall@example.com, lead@example.com")
    at.button(key="alert_edit_submit").click().run()
    ok(at)
    assert not at.error, texts(at.error)
    assert stored_channels(running, rule_id) == [
        {**email, "to": ["oncall@example.com", "lead@example.com"], "tls_ca_file": None}
    ]


def test_create_and_end_a_silence(running: RunningCollector) -> None:
    rule_id = running.http.post("/api/v1/alert-rules", json=rule_body(name="noisy", group_by="team")).json()["id"]
    at = page()
    at.selectbox(key="alert_silence_rule").select(rule_id)
    at.text_input(key="alert_silence_group").input("search")
    at.text_input(key="alert_silence_reason").input("planned migration")
    at.button(key="alert_silence_create").click().run()
    ok(at)
    assert error_beside(at, "alert_silence_by").startswith("created_by: is required")
    assert running.get("/api/v1/silences")["silences"] == []

    ends = (datetime.now(UTC) + timedelta(days=1)).replace(second=0, microsecond=0)
    at.date_input(key="alert_silence_end_date").set_value(ends.date())
    at.time_input(key="alert_silence_end_time").set_value(ends.time())
    at.text_input(key="alert_silence_by").input("ana")
    at.button(key="alert_silence_create").click().run()
    ok(at)
    assert not at.error, texts(at.error)
    [silence] = running.get("/api/v1/silences")["silences"]
    assert {key: silence[key] for key in ("rule_id", "group", "filters", "created_by", "reason", "active")} == {
        "rule_id": rule_id, "group": "search", "filters": {}, "created_by": "ana", "reason": "planned migration",
        "active": True,
    }  # fmt: skip
    assert datetime.fromisoformat(silence["ends_at"]) == ends
    listed = at.dataframe[1].value
    assert list(listed["Mutes"]) == [f"rule 'noisy' (id {rule_id}); group search"]

    at.button(key="alert_silence_end").click().run()
    ok(at)
    assert running.get("/api/v1/silences")["silences"] == []
    assert f"Silence {silence['id']} ended." in texts(at.success)
    assert "No silences." in texts(at.caption)


def test_acknowledge_a_firing_alert(running: RunningCollector) -> None:
    send(running, 3, **{sc.ERROR_TYPE: "RateLimitError", sc.HTTP_RESPONSE_STATUS_CODE: 429})
    rule_id = running.http.post("/api/v1/alert-rules", json=rule_body(name="boom")).json()["id"]
    assert evaluate(running) == [(rule_id, "firing")]
    [event] = running.get("/api/v1/alert-events")["events"]
    at = page()
    button = at.button(key=f"alert_ack_{event['id']}")
    button.click().run()  # nobody named: the collector refuses, beside the name
    ok(at)
    assert error_beside(at, "alert_ack_by").startswith("by: is required")
    at.text_input(key="alert_ack_by").input("ana")
    at.button(key=f"alert_ack_{event['id']}").click().run()
    ok(at)
    assert not at.error or texts(at.error).startswith("Firing (1)"), texts(at.error)
    [acked] = running.get("/api/v1/alert-events")["events"]
    assert acked["acked_by"] == "ana"
    assert running.get(f"/api/v1/alert-rules/{rule_id}")["acked_by"] == "ana"
    assert "acknowledged by ana" in texts(at.markdown)
    assert not [w for w in _widgets(at.main) if getattr(w, "key", None) == f"alert_ack_{event['id']}"]
    assert list(at.dataframe[-1].value["Acknowledged by"]) == ["ana"]


def send_hourly(running: RunningCollector, hours: int, per_hour: dict[str, int]) -> None:
    """Calls every hour for the last `hours` hours, `per_hour[team]` for each team (a steady history)."""
    now = datetime.now(UTC)
    for hour in range(1, hours + 1):
        start = now - timedelta(hours=hour, minutes=-10)
        spans = [chat_attributes(**{sc.TEAM: team, sc.REQUEST_ID: f"req_{uuid4().hex}"})
                 for team, count in per_hour.items() for _ in range(count)]  # fmt: skip
        body = request_with(spans, start_ns=int(start.timestamp() * 1e9)).SerializeToString()
        assert running.http.post("/v1/traces", content=body, headers=PROTOBUF).status_code == 200


def chart_spec(at: AppTest) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The one chart's Vega-Lite spec and the rows of its data."""
    [chart] = at.get("vega_lite_chart")
    spec = json.loads(chart.proto.spec)
    [dataset] = chart.proto.datasets  # Streamlit sends the chart's data beside its spec, as Arrow
    rows = pa.ipc.open_stream(dataset.data.data).read_all().to_pylist()
    return spec, rows


def marks(spec: dict[str, Any]) -> dict[str, dict[str, Any]]:
    layers = spec.get("spec", spec)["layer"]
    return {(layer["mark"]["type"] if isinstance(layer["mark"], dict) else layer["mark"]): layer for layer in layers}


def test_preview_of_a_grouped_anomaly_rule_draws_the_band_and_a_panel_per_team(running: RunningCollector) -> None:
    send_hourly(running, 30, {"search": 4, "ads": 2})
    at = new(page(), name="per team", kind="anomaly")
    at = new(at, metric="requests", baseline="rolling_median", group_by="team")
    at.button(key="alert_new_preview_button").click().run()
    ok(at)
    assert not at.error, texts(at.error)
    assert "2 group(s) by team previewed (cap: 50); none left out." in texts(at.markdown)
    spec, rows = chart_spec(at)
    assert spec["facet"]["field"] == "group"
    assert spec["resolve"]["scale"]["y"] == "independent"
    layers = marks(spec)
    assert {layers["area"]["encoding"]["y"]["field"], layers["area"]["encoding"]["y2"]["field"]} == {"lower", "upper"}
    assert layers["line"]["encoding"]["y"]["field"] == "value"
    assert layers["point"]["transform"] == [{"filter": "datum.fired"}]  # the markers: where it would have fired
    assert {row["group"] for row in rows} == {"search", "ads"}
    banded = [row for row in rows if row["upper"] is not None]
    assert banded, "no hour has a band"
    assert all(row["lower"] <= row["upper"] for row in banded)
    assert running.get("/api/v1/alert-rules")["rules"] == []  # a preview stores nothing


def test_preview_of_a_threshold_rule_draws_its_levels_and_where_it_fires(running: RunningCollector) -> None:
    send(running, 3, **{sc.ERROR_TYPE: "RateLimitError", sc.HTTP_RESPONSE_STATUS_CODE: 429})
    at = new(page(), name="errors", metric="errors", window="1h", threshold="2", warning_threshold="1")
    at.button(key="alert_new_preview_button").click().run()
    ok(at)
    assert "would have fired 1 time(s)" in texts(at.markdown)
    spec, rows = chart_spec(at)
    assert "facet" not in spec
    rules = [layer for layer in spec["layer"] if layer["mark"]["type"] == "rule"]
    assert sorted(layer["encoding"]["y"]["datum"] for layer in rules) == [1.0, 2.0]
    assert [row["value"] for row in rows if row["fired"]] == [3.0]


def test_edit_and_toggle_keep_an_anomaly_rules_own_fields(running: RunningCollector) -> None:
    body = rule_body(name="odd hours", kind="anomaly", metric="cost", baseline="rolling_median", sensitivity=2.5,
                     group_by="team", max_groups=7, channels=[{"type": "teams", "url": TEAMS_URL}])  # fmt: skip
    del body["threshold"]
    rule_id = running.http.post("/api/v1/alert-rules", json=body).json()["id"]
    fields = ("kind", "metric", "window", "op", "baseline", "sensitivity", "group_by", "max_groups", "channels")
    before = {key: running.get(f"/api/v1/alert-rules/{rule_id}")[key] for key in fields}
    at = page()
    at.button(key="alert_toggle").click().run()  # disable: the PUT keeps what only an anomaly rule has
    ok(at)
    shown = running.get(f"/api/v1/alert-rules/{rule_id}")
    assert (shown["enabled"], {key: shown[key] for key in fields}) == (False, before)

    at.button(key="alert_edit").click().run()
    ok(at)
    assert at.selectbox(key="alert_edit_kind").value == "anomaly"
    assert at.selectbox(key="alert_edit_baseline").value == "rolling_median"
    assert at.number_input(key="alert_edit_max_groups").value == 7
    at.number_input(key="alert_edit_sensitivity").set_value(5.0)
    at.button(key="alert_edit_submit").click().run()
    ok(at)
    assert not at.error, texts(at.error)
    shown = running.get(f"/api/v1/alert-rules/{rule_id}")
    assert {key: shown[key] for key in fields} == {**before, "sensitivity": 5.0}
    assert stored_channels(running, rule_id) == [{"type": "teams", "url": TEAMS_URL}]
