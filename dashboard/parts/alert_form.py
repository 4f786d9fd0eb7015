"""The alert rule form: its widgets, its 7-day preview, and the callbacks that create, save, preview or edit a rule."""

from __future__ import annotations

from typing import Any

import altair as alt
import pandas as pd
import streamlit as st

from collector.alerts.rules import CHANNEL_TYPES, FILTERS, METRICS, OPS
from dashboard.data import alerts_client
from dashboard.data.client import ApiError
from dashboard.parts import ui
from dashboard.parts.alert_draft import (
    ENFORCE_CHOICES,
    WINDOWS,
    RuleForm,
    edit_form,
    form_body,
    form_fields,
    initial_values,
)

# The page's rule picker and its notice: saving an edit reports there and selects the rule again.
MANAGE_NOTICE = "alert_manage_notice"
MANAGE_RULE = "alert_manage_rule"
EDITING = "alert_editing"  # the rule being edited, as GET showed it when "Edit" was pressed


def _clear_messages(form: RuleForm) -> None:
    for suffix in ("error", "notice", "preview"):
        st.session_state.pop(form.key(suffix), None)


def _rejected(form: RuleForm, error: ApiError) -> None:
    """Keep the reason a draft was refused, shown next to its form: `field: message` when a field was named."""
    if isinstance(error, alerts_client.RuleRejectedError):
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
    except ApiError as error:
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


def start_edit(rule: dict[str, Any]) -> None:
    """Edit button: fill the edit form with the rule (before its widgets are drawn, so they take these values)."""
    form = edit_form(rule)
    _clear_messages(form)
    st.session_state[EDITING] = rule
    for suffix, value in initial_values(rule).items():
        st.session_state[form.key(suffix)] = value


def stop_edit() -> None:
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
        column.text_input(name.replace("_", " ").capitalize(), key=form.key(f"filter_{name}"))
    enforce_inputs(form)
    channel_inputs(form)


def enforce_inputs(form: RuleForm) -> None:
    """What the guard does in the apps once the budget is spent (a cost rule over a UTC day or month, > or >=)."""
    action, model = st.columns([1, 3])
    action.selectbox(
        "Enforce in the app",
        ENFORCE_CHOICES,
        key=form.key("enforce_action"),
        help="For a budget (metric cost, window day or month, > or >=): apps running the guard warn, block, or "
        "downgrade their calls to a cheaper model once it is spent.",
    )
    model.text_input(
        "Downgrade to (model, for downgrade)", key=form.key("enforce_downgrade_to"), placeholder="gpt-4o-mini"
    )


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
            buttons[2].form_submit_button("Cancel", on_click=stop_edit, icon=":material/close:")
    if message := st.session_state.get(form.key("error")):
        st.error(message)
    elif notice := st.session_state.get(form.key("notice")):
        st.success(notice)
    show_preview(form)
