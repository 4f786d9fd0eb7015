"""Alerts: the rules with their current state (firing first), budgets, one form to add or edit a rule (with a
preview), enable/disable/test/delete, and the history."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import altair as alt
import pandas as pd
import streamlit as st

from collector.alerts.rules import CALENDAR_WINDOWS, CHANNEL_TYPES, FILTERS, METRICS, OPS, ROLLING_WINDOWS
from dashboard.data import alerts_client
from dashboard.data.client import ApiError
from dashboard.parts import filters, ui

WINDOWS = (*ROLLING_WINDOWS, *CALENDAR_WINDOWS)
STATE_ORDER = {"firing": 0, "pending": 1, "ok": 2}
STATE_LABELS = {"firing": "🔴 firing", "pending": "🟠 pending", "ok": "🟢 ok"}
MANAGE_ERROR = "alert_manage_error"
MANAGE_NOTICE = "alert_manage_notice"
MANAGE_RULE = "alert_manage_rule"
EDITING = "alert_editing"  # the rule being edited, as GET showed it when "Edit" was pressed


class DraftError(ValueError):
    """A draft the dashboard can't send as it is (the collector's own checks come back as a 422)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class RuleForm:
    """One rule form: a new rule, or an existing one (its id and its stored, masked channels)."""

    prefix: str  # of every widget key and message key
    submit: str
    icon: str
    rule_id: int | None = None
    stored: tuple[dict[str, str], ...] = ()

    @property
    def name(self) -> str:
        return self.prefix.rstrip("_")

    def key(self, field: str) -> str:
        return self.prefix + field


NEW_FORM = RuleForm("alert_new_", "Create rule", ":material/add:")


def edit_form(rule: dict[str, Any]) -> RuleForm:
    """The form for editing `rule`."""
    stored = tuple(rule.get("channels") or [])
    return RuleForm("alert_edit_", "Save changes", ":material/save:", int(rule["id"]), stored)


def threshold_value(text: str) -> Any:
    """The typed threshold as a number; anything else is sent as typed so the collector says what is wrong."""
    try:
        number = float(text)
    except ValueError:
        return text.strip() or None
    return number if math.isfinite(number) else text


def threshold_text(value: float) -> str:
    """A stored threshold as the form shows it: 1000 not 1000.0, and every digit of a fraction."""
    return str(int(value)) if float(value).is_integer() and abs(value) < 1e15 else repr(float(value))


def initial_values(rule: dict[str, Any] | None = None) -> dict[str, Any]:
    """The form's widget values (by key suffix): a blank draft, or `rule` as GET showed it.

    Stored channel URLs come back masked, so their fields start empty: left empty, the stored URL is kept."""
    rule = rule or {}
    channels = rule.get("channels") or []
    values: dict[str, Any] = {
        "name": rule.get("name", ""),
        "metric": rule.get("metric", METRICS[0]),
        "window": rule.get("window", WINDOWS[0]),
        "op": rule.get("op", OPS[0]),
        "threshold": threshold_text(rule["threshold"]) if "threshold" in rule else "",
        "for": rule.get("for") or "",
        "min_requests": int(rule.get("min_requests") or 0),
        "enabled": bool(rule.get("enabled", True)),
    }
    for name in FILTERS:
        values[f"filter_{name}"] = ", ".join((rule.get("filters") or {}).get(name, []))
    for index, channel in enumerate(channels):
        values.update({f"channel_type_{index}": channel["type"], f"channel_url_{index}": "",
                       f"channel_remove_{index}": False})  # fmt: skip
    values.update({f"channel_type_{len(channels)}": CHANNEL_TYPES[0], f"channel_url_{len(channels)}": ""})
    return values


def form_fields(form: RuleForm) -> dict[str, Any]:
    """The form's widgets (read from session state) as the API's rule body, without channels."""
    state = st.session_state
    filters = {}
    for name in FILTERS:
        values = [value.strip() for value in str(state.get(form.key(f"filter_{name}")) or "").split(",")]
        if values := [value for value in values if value]:
            filters[name] = values
    return {
        "name": str(state.get(form.key("name")) or ""),
        "metric": state.get(form.key("metric")),
        "window": state.get(form.key("window")),
        "op": state.get(form.key("op")),
        "threshold": threshold_value(str(state.get(form.key("threshold")) or "")),
        "for": str(state.get(form.key("for")) or "").strip() or None,
        "filters": filters,
        "enabled": bool(state.get(form.key("enabled"), True)),
        "min_requests": int(state.get(form.key("min_requests")) or 0),
    }


def form_channels(form: RuleForm) -> list[dict[str, str]]:
    """The channels to send: each stored one kept (sent back masked, which the collector maps to the URL it holds),
    replaced by a typed URL, or removed; then the new one if a URL was typed."""
    state = st.session_state
    channels = []
    for index, stored in enumerate(form.stored):
        if state.get(form.key(f"channel_remove_{index}")):
            continue
        url = str(state.get(form.key(f"channel_url_{index}")) or "").strip()
        if url:
            channels.append({"type": state.get(form.key(f"channel_type_{index}")), "url": url})
        else:
            channels.append(dict(stored))
    added = len(form.stored)
    if url := str(state.get(form.key(f"channel_url_{added}")) or "").strip():
        channels.append({"type": state.get(form.key(f"channel_type_{added}")), "url": url})
    return channels


def form_body(form: RuleForm) -> dict[str, Any]:
    """The whole rule body to POST or PUT."""
    return {**form_fields(form), "channels": form_channels(form)}


def _clear_messages(form: RuleForm) -> None:
    for suffix in ("error", "notice", "preview"):
        st.session_state.pop(form.key(suffix), None)


def _rejected(form: RuleForm, error: ApiError | DraftError) -> None:
    """Keep the reason a draft was refused, shown next to its form: `field: message` when a field was named."""
    if isinstance(error, (alerts_client.RuleRejectedError, DraftError)):
        st.session_state[form.key("error")] = f"{error.field or 'rule'}: {error.message}"
    else:
        st.session_state[form.key("error")] = error.message


def _submit(api: str, token: str | None, form: RuleForm) -> None:
    """Submit callback: POST a new rule or PUT the edited one; the verdict is kept for the next render."""
    _clear_messages(form)
    try:
        body = form_body(form)
        if form.rule_id is None:
            rule_id = alerts_client.create_rule(api, token, body)
        else:
            alerts_client.update_rule(api, token, form.rule_id, body)
    except (ApiError, DraftError) as error:
        _rejected(form, error)
        return
    if form.rule_id is None:
        st.session_state[form.key("notice")] = f"Created rule {body['name']!r} (id {rule_id})."
    else:
        st.session_state.pop(EDITING, None)
        st.session_state[MANAGE_NOTICE] = f"Saved rule {body['name']!r} (id {form.rule_id})."
        # Set again so the browser redraws the picker: it would keep showing the rule's old name otherwise.
        st.session_state[MANAGE_RULE] = form.rule_id


def _preview(api: str, token: str | None, form: RuleForm) -> None:
    """Preview button: replay the draft over the last 7 days (nothing is stored, so no channels are needed)."""
    _clear_messages(form)
    body = {**form_fields(form), "channels": []}
    try:
        st.session_state[form.key("preview")] = (body, alerts_client.preview(api, token, body))
    except ApiError as error:
        _rejected(form, error)


def _start_edit(rule: dict[str, Any]) -> None:
    """Edit button: fill the edit form with the rule (before its widgets are drawn, so they take these values)."""
    form = edit_form(rule)
    _clear_messages(form)
    st.session_state[EDITING] = rule
    for suffix, value in initial_values(rule).items():
        st.session_state[form.key(suffix)] = value


def _stop_edit() -> None:
    """Cancel button."""
    if rule := st.session_state.pop(EDITING, None):
        _clear_messages(edit_form(rule))


def show_preview(form: RuleForm) -> None:
    """The draft's metric over the last 7 days, its threshold, and when it would have fired."""
    if form.key("preview") not in st.session_state:
        return
    body, result = st.session_state[form.key("preview")]
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
        return
    if (st.session_state.get(EDITING) or {}).get("id") == rule_id:
        _stop_edit()


def _toggle(api: str, token: str | None, rule: dict[str, Any]) -> None:
    """Enable/disable button callback: PUT the same rule with `enabled` flipped."""
    st.session_state.pop(MANAGE_ERROR, None)
    # Channels go back masked, as read: the collector keeps the URLs it holds for them.
    body = alerts_client.editable_body(rule, rule.get("channels") or [], enabled=not rule["enabled"])
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
    """Pick one rule to edit, enable/disable, test or delete."""
    if not rules:
        return
    by_id = {rule["id"]: rule for rule in rules}
    rule_id = st.selectbox(
        "Rule", list(by_id), format_func=lambda key: f"{by_id[key]['name']} (id {key})", key=MANAGE_RULE
    )
    rule = by_id.get(rule_id)
    if rule is None:
        return
    edit, toggle, test, delete = st.columns(4)
    edit.button("Edit", key="alert_edit", on_click=_start_edit, args=(rule,), icon=":material/edit:")
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


def channel_inputs(form: RuleForm) -> None:
    """One row per stored channel (kept when left blank, replaced when typed, or removed), then one to add."""
    for index, stored in enumerate(form.stored):
        kind, url, remove = st.columns([1, 3, 1], vertical_alignment="bottom")
        kind.selectbox("Channel", CHANNEL_TYPES, key=form.key(f"channel_type_{index}"))
        url.text_input(
            f"URL of channel {index + 1} (stored: `{stored['url']}`)",
            key=form.key(f"channel_url_{index}"),
            placeholder="leave blank to keep the stored URL, or type a new one",
        )
        remove.checkbox("Remove", key=form.key(f"channel_remove_{index}"))
    added = len(form.stored)
    kind, url = st.columns([1, 3])
    kind.selectbox("Channel", CHANNEL_TYPES, key=form.key(f"channel_type_{added}"))
    label = "Add a channel URL (optional)" if form.stored else "Channel URL (optional)"
    url.text_input(label, key=form.key(f"channel_url_{added}"), placeholder="https://hooks.slack.com/…")


def rule_fields(form: RuleForm) -> None:
    """The rule's widgets, keyed by the form's prefix (their values live in session state)."""
    st.text_input("Name", key=form.key("name"), placeholder="Error rate for search")
    metric, window, op, threshold = st.columns(4)
    metric.selectbox("Metric", METRICS, key=form.key("metric"))
    window.selectbox("Window", WINDOWS, key=form.key("window"), help="Rolling (5m, 1h, 24h) or UTC day/month")
    op.selectbox("Condition", OPS, key=form.key("op"))
    threshold.text_input("Threshold", key=form.key("threshold"), placeholder="0.05")
    hold, minimum, enabled = st.columns(3)
    hold.text_input("For (optional)", key=form.key("for"), placeholder="5m", help="How long it must hold: 90s, 5m")
    minimum.number_input("Min requests", min_value=0, step=1, key=form.key("min_requests"))
    enabled.checkbox("Enabled", key=form.key("enabled"))
    st.caption("Filters (optional): comma-separated values; a rule watches calls matching all of them.")
    for column, name in zip(st.columns(len(FILTERS)), FILTERS, strict=True):
        column.text_input(name.capitalize(), key=form.key(f"filter_{name}"))
    channel_inputs(form)


def rule_form(context: ui.Context, form: RuleForm, rule: dict[str, Any] | None = None) -> None:
    """A rule form, blank or for editing `rule`; the collector validates, and its 422 is shown beside it."""
    # Streamlit forgets a widget's value once it is not drawn (another page): start again from the rule.
    for suffix, value in initial_values(rule).items():
        st.session_state.setdefault(form.key(suffix), value)
    with st.form(form.name):
        rule_fields(form)
        buttons = st.columns(3 if form.rule_id is not None else 2)
        buttons[0].form_submit_button(
            form.submit, on_click=_submit, args=(context.api, context.token, form), icon=form.icon, type="primary"
        )
        buttons[1].form_submit_button(
            "Preview over the last 7 days",
            on_click=_preview,
            args=(context.api, context.token, form),
            icon=":material/query_stats:",
        )
        if form.rule_id is not None:
            buttons[2].form_submit_button("Cancel", on_click=_stop_edit, icon=":material/close:")
    if message := st.session_state.get(form.key("error")):
        st.error(message)
    elif notice := st.session_state.get(form.key("notice")):
        st.success(notice)
    show_preview(form)


def show_budgets(budgets: list[alerts_client.Budget]) -> None:
    """Each budget rule's spend so far and its forecast for the period's end, against its limit."""
    if not budgets:
        return
    st.subheader("Budgets")
    st.caption("Spend so far in each budget's UTC day or month, and where the pace so far would end it.")
    for budget in budgets:
        for column, (fill, text) in zip(st.columns(2), budget.bars(), strict=True):
            column.progress(fill, text=text)


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
    """Rules (firing first), budgets, manage or edit one, add one, and the history."""
    rules = alerts_client.rules(context.api, context.token)
    show_rules(rules)
    show_budgets(alerts_client.budgets(context.api, context.token, rules, filters.now_rounded()))
    manage(context, rules)
    if editing := st.session_state.get(EDITING):
        st.subheader(f"Edit rule {editing['name']!r} (id {editing['id']})")
        rule_form(context, edit_form(editing), editing)
    st.subheader("New rule")
    rule_form(context, NEW_FORM)
    show_events(rules, alerts_client.events(context.api, context.token))
    show_deliveries(alerts_client.delivery_attempts(context.api, context.token))


ui.live(render, require_calls=False, before_any_call=True)
