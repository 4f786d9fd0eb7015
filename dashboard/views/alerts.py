"""Alerts: the rules with their current state (firing first), a form to add one, enable/disable/delete, history."""

from __future__ import annotations

import math
from typing import Any

import altair as alt
import pandas as pd
import streamlit as st

from collector.alert_rules import CALENDAR_WINDOWS, CHANNEL_TYPES, FILTERS, METRICS, OPS, ROLLING_WINDOWS
from dashboard import alerts_client, ui
from dashboard.client import ApiError

WINDOWS = (*ROLLING_WINDOWS, *CALENDAR_WINDOWS)
STATE_ORDER = {"firing": 0, "pending": 1, "ok": 2}
STATE_LABELS = {"firing": "🔴 firing", "pending": "🟠 pending", "ok": "🟢 ok"}
FORM_ERROR = "alert_form_error"
FORM_NOTICE = "alert_form_notice"
MANAGE_ERROR = "alert_manage_error"
MANAGE_NOTICE = "alert_manage_notice"


def threshold_value(text: str) -> Any:
    """The typed threshold as a number; anything else is sent as typed so the collector says what is wrong."""
    try:
        number = float(text)
    except ValueError:
        return text.strip() or None
    return number if math.isfinite(number) else text


def form_body() -> dict[str, Any]:
    """The create form's widgets (read from session state) as the API's rule body."""
    state = st.session_state
    filters = {}
    for name in FILTERS:
        values = [value.strip() for value in str(state.get(f"alert_new_filter_{name}") or "").split(",")]
        if values := [value for value in values if value]:
            filters[name] = values
    url = str(state.get("alert_new_channel_url") or "").strip()
    return {
        "name": str(state.get("alert_new_name") or ""),
        "metric": state.get("alert_new_metric"),
        "window": state.get("alert_new_window"),
        "op": state.get("alert_new_op"),
        "threshold": threshold_value(str(state.get("alert_new_threshold") or "")),
        "for": str(state.get("alert_new_for") or "").strip() or None,
        "filters": filters,
        "channels": [{"type": state.get("alert_new_channel_type"), "url": url}] if url else [],
        "enabled": bool(state.get("alert_new_enabled", True)),
        "min_requests": int(state.get("alert_new_min_requests") or 0),
    }


def _create(api: str, token: str | None) -> None:
    """Submit callback: POST the form; keep the API's verdict for the next render (runs before the page body)."""
    st.session_state.pop(FORM_ERROR, None)
    st.session_state.pop(FORM_NOTICE, None)
    body = form_body()
    try:
        rule_id = alerts_client.create_rule(api, token, body)
    except alerts_client.RuleRejectedError as error:
        st.session_state[FORM_ERROR] = f"{error.field or 'rule'}: {error.message}"
    except ApiError as error:
        st.session_state[FORM_ERROR] = error.message
    else:
        st.session_state[FORM_NOTICE] = f"Created rule {body['name']!r} (id {rule_id})."


PREVIEW = "alert_preview"


def _preview(api: str, token: str | None) -> None:
    """Second submit button: replay the draft over the last 7 days (nothing is stored)."""
    st.session_state.pop(FORM_ERROR, None)
    st.session_state.pop(FORM_NOTICE, None)
    st.session_state.pop(PREVIEW, None)
    body = form_body()
    try:
        st.session_state[PREVIEW] = (body, alerts_client.preview(api, token, body))
    except alerts_client.RuleRejectedError as error:
        st.session_state[FORM_ERROR] = f"{error.field or 'rule'}: {error.message}"
    except ApiError as error:
        st.session_state[FORM_ERROR] = error.message


def show_preview() -> None:
    """The draft's metric over the last 7 days, its threshold, and when it would have fired."""
    if PREVIEW not in st.session_state:
        return
    body, result = st.session_state[PREVIEW]
    fired = result["fired_at"]
    st.markdown(
        f"**Preview of {body['name'] or 'the draft'}** over the last 7 days (hourly): "
        + (f"would have fired {len(fired)} time(s)." if fired else "would not have fired.")
    )
    frame = pd.DataFrame(result["points"])
    if frame.empty or frame["value"].isna().all():
        st.caption("No calls matched in the last 7 days.")
        return
    frame["time"] = pd.to_datetime(frame["time"], utc=True, format="ISO8601")
    line = (
        alt.Chart(frame)
        .mark_line()
        .encode(
            x=alt.X("time:T", title="Time (UTC)"),
            y=alt.Y("value:Q", title=str(body["metric"])),
            tooltip=[alt.Tooltip("time:T", title="Time (UTC)"), "value:Q", "requests:Q", "state:N"],
        )
    )
    threshold = (
        alt.Chart(pd.DataFrame({"threshold": [body["threshold"]]}))
        .mark_rule(strokeDash=[4, 4], color="#d62728")
        .encode(y="threshold:Q")
    )
    fires = frame[frame["time"].isin(pd.to_datetime(fired, utc=True, format="ISO8601"))]
    marks = alt.Chart(fires).mark_point(color="#d62728", size=80, filled=True).encode(x="time:T", y="value:Q")
    st.altair_chart(line + threshold + marks, width="stretch")


def _send_test(api: str, token: str | None, rule_id: int) -> None:
    """Test button callback: the collector sends to the rule's channels in the background."""
    st.session_state.pop(MANAGE_ERROR, None)
    try:
        channels = alerts_client.send_test(api, token, rule_id)
    except ApiError as error:
        st.session_state[MANAGE_ERROR] = error.message
    else:
        st.session_state[MANAGE_NOTICE] = f"Test notification sent to {channels} channel(s); see the deliveries below."


def _delete(api: str, token: str | None, rule_id: int) -> None:
    """Delete button callback."""
    st.session_state.pop(MANAGE_ERROR, None)
    try:
        alerts_client.delete_rule(api, token, rule_id)
    except ApiError as error:
        st.session_state[MANAGE_ERROR] = error.message


def reentered_channels(rule: dict[str, Any], text: str) -> list[dict[str, str]] | None:
    """The channels to send back on PUT: [] for a rule without any, else one typed URL per existing channel.

    None when the URLs were not (all) re-entered: GET shows masked URLs, so sending them back would break them."""
    existing = rule.get("channels") or []
    if not existing:
        return []
    urls = [line.strip() for line in text.splitlines() if line.strip()]
    if len(urls) != len(existing):
        return None
    return [{"type": channel["type"], "url": url} for channel, url in zip(existing, urls, strict=True)]


def _toggle(api: str, token: str | None, rule: dict[str, Any]) -> None:
    """Enable/disable button callback: PUT the same rule with `enabled` flipped."""
    st.session_state.pop(MANAGE_ERROR, None)
    channels = reentered_channels(rule, str(st.session_state.get(f"alert_urls_{rule['id']}") or ""))
    if channels is None:
        st.session_state[MANAGE_ERROR] = "Re-enter every channel URL (one per line) to change this rule."
        return
    body = alerts_client.editable_body(rule, channels, enabled=not rule["enabled"])
    try:
        alerts_client.update_rule(api, token, int(rule["id"]), body)
    except alerts_client.RuleRejectedError as error:
        st.session_state[MANAGE_ERROR] = f"{error.field or 'rule'}: {error.message}"
    except ApiError as error:
        st.session_state[MANAGE_ERROR] = error.message


def condition(rule: dict[str, Any]) -> str:
    """A rule's condition in one line: `error_rate > 0.05 over 5m for 600s`."""
    text = f"{rule['metric']} {rule['op']} {rule['threshold']:g} over {rule['window']}"
    if rule.get("for"):
        text += f" for {rule['for']}"
    if rule.get("min_requests"):
        text += f" (min {rule['min_requests']} requests)"
    return text


def rules_frame(rules: list[dict[str, Any]]) -> pd.DataFrame:
    """One row per rule, firing first, then pending, then ok (disabled last within each)."""
    ordered = sorted(rules, key=lambda rule: (STATE_ORDER.get(rule["state"], 3), not rule["enabled"], rule["id"]))
    rows = [
        {
            "State": STATE_LABELS.get(rule["state"], rule["state"]),
            "Rule": rule["name"],
            "Condition": condition(rule),
            "Value": rule["value"],
            "Since": rule.get("state_since"),
            "Filters": "; ".join(f"{key}={','.join(values)}" for key, values in (rule.get("filters") or {}).items()),
            "Channels": ", ".join(f"{channel['type']} {channel['url']}" for channel in rule.get("channels") or []),
            "Enabled": bool(rule["enabled"]),
            "id": rule["id"],
        }
        for rule in ordered
    ]
    return pd.DataFrame(rows, columns=["State", "Rule", "Condition", "Value", "Since", "Filters", "Channels",
                                       "Enabled", "id"])  # fmt: skip


def show_rules(rules: list[dict[str, Any]]) -> None:
    """The list: a banner for firing rules, then every rule with its state and current value."""
    st.subheader("Rules")
    if not rules:
        st.info("No alert rules yet. Add one below.")
        return
    firing = [rule["name"] for rule in rules if rule["state"] == "firing"]
    if firing:
        st.error(f"Firing ({len(firing)}): {', '.join(firing)}", icon=":material/notifications_active:")
    st.dataframe(rules_frame(rules), hide_index=True, width="stretch")


def manage(context: ui.Context, rules: list[dict[str, Any]]) -> None:
    """Enable/disable or delete one rule."""
    if not rules:
        return
    by_id = {rule["id"]: rule for rule in rules}
    rule_id = st.selectbox(
        "Rule", list(by_id), format_func=lambda key: f"{by_id[key]['name']} (id {key})", key="alert_manage_rule"
    )
    rule = by_id.get(rule_id)
    if rule is None:
        return
    if rule.get("channels"):
        st.caption(
            "The collector never shows channel URLs back, so changing this rule needs them re-entered "
            f"(one per line, in order: {', '.join(channel['type'] for channel in rule['channels'])})."
        )
        st.text_area("Channel URLs", key=f"alert_urls_{rule['id']}", height=80)
    toggle, test, delete = st.columns(3)
    test.button(
        "Send test notification",
        key="alert_test",
        on_click=_send_test,
        args=(context.api, context.token, rule["id"]),
        icon=":material/send:",
        disabled=not rule.get("channels"),
    )
    toggle.button(
        "Disable" if rule["enabled"] else "Enable",
        key="alert_toggle",
        on_click=_toggle,
        args=(context.api, context.token, rule),
        icon=":material/toggle_on:" if rule["enabled"] else ":material/toggle_off:",
    )
    delete.button(
        "Delete",
        key="alert_delete",
        on_click=_delete,
        args=(context.api, context.token, rule["id"]),
        icon=":material/delete:",
        type="primary",
    )
    if message := st.session_state.get(MANAGE_ERROR):
        st.error(message)
    elif notice := st.session_state.pop(MANAGE_NOTICE, None):
        st.success(notice)


def create_form(context: ui.Context) -> None:
    """The create form; the collector validates, and its 422 (field and message) is shown beside it."""
    with st.form("alert_new"):
        st.text_input("Name", key="alert_new_name", placeholder="Error rate for search")
        metric, window, op, threshold = st.columns(4)
        metric.selectbox("Metric", METRICS, key="alert_new_metric")
        window.selectbox("Window", WINDOWS, key="alert_new_window", help="Rolling (5m, 1h, 24h) or UTC day/month")
        op.selectbox("Condition", OPS, key="alert_new_op")
        threshold.text_input("Threshold", key="alert_new_threshold", placeholder="0.05")
        hold, minimum, enabled = st.columns(3)
        hold.text_input("For (optional)", key="alert_new_for", placeholder="5m", help="How long it must hold: 90s, 5m")
        minimum.number_input("Min requests", min_value=0, step=1, value=0, key="alert_new_min_requests")
        enabled.checkbox("Enabled", value=True, key="alert_new_enabled")
        st.caption("Filters (optional): comma-separated values; a rule watches calls matching all of them.")
        for column, name in zip(st.columns(len(FILTERS)), FILTERS, strict=True):
            column.text_input(name.capitalize(), key=f"alert_new_filter_{name}")
        kind, url = st.columns([1, 3])
        kind.selectbox("Channel", CHANNEL_TYPES, key="alert_new_channel_type")
        url.text_input("Channel URL (optional)", key="alert_new_channel_url", placeholder="https://hooks.slack.com/…")
        create, check = st.columns(2)
        with create:
            st.form_submit_button(
                "Create rule", on_click=_create, args=(context.api, context.token), icon=":material/add:"
            )
        with check:
            st.form_submit_button(
                "Preview over the last 7 days",
                on_click=_preview,
                args=(context.api, context.token),
                icon=":material/query_stats:",
            )
    if message := st.session_state.get(FORM_ERROR):
        st.error(message)
    elif notice := st.session_state.get(FORM_NOTICE):
        st.success(notice)
    show_preview()


def show_events(rules: list[dict[str, Any]], events: list[dict[str, Any]]) -> None:
    """State changes, newest first (as the API sends them)."""
    st.subheader("History")
    if not events:
        st.caption("No state changes yet.")
        return
    names = {rule["id"]: rule["name"] for rule in rules}
    frame = pd.DataFrame(
        [
            {
                "Time": event["time"],
                "Rule": names.get(event["rule_id"], f"deleted rule {event['rule_id']}"),
                "From": event["from_state"],
                "To": STATE_LABELS.get(event["to_state"], event["to_state"]),
                "Value": event["value"],
                "Threshold": event["threshold"],
            }
            for event in events
        ]
    )
    st.dataframe(frame, hide_index=True, width="stretch")


def show_deliveries(attempts: list[dict[str, Any]]) -> None:
    """Failed and successful notification deliveries, so a dead channel is seen."""
    st.subheader("Notification deliveries")
    if not attempts:
        st.caption("No notifications sent yet.")
        return
    failed = sum(1 for attempt in attempts if not attempt["ok"])
    if failed:
        st.warning(f"{failed} of the last {len(attempts)} delivery attempts failed (each is retried with backoff).")
    frame = pd.DataFrame(
        [
            {
                "Time (UTC)": attempt["time"][:19].replace("T", " "),
                "Rule": attempt["rule_id"],
                "Channel": f"{attempt['channel_type']} ({attempt['channel_host']})",
                "Attempt": attempt["attempt"],
                "Delivered": "yes" if attempt["ok"] else "no",
                "Error": attempt["error"] or "",
            }
            for attempt in attempts
        ]
    )
    st.dataframe(frame, hide_index=True, width="stretch")


def render(context: ui.Context) -> None:
    """Rules (firing first), manage one, add one, and the history."""
    rules = alerts_client.rules(context.api, context.token)
    show_rules(rules)
    manage(context, rules)
    st.subheader("New rule")
    create_form(context)
    show_events(rules, alerts_client.events(context.api, context.token))
    show_deliveries(alerts_client.delivery_attempts(context.api, context.token))


ui.live(render, require_calls=False, before_any_call=True)
