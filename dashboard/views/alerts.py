"""Alerts: rules with their state (firing first), budgets, firing alerts to acknowledge, enable/disable/test/delete,
add or edit (with a 7-day preview), silences, and history."""

from __future__ import annotations

from typing import Any

import streamlit as st

from dashboard.data import alerts_client
from dashboard.data.client import ApiError
from dashboard.parts import filters, ui
from dashboard.parts.alerts.acks import show_firing
from dashboard.parts.alerts.digests import show as show_digests
from dashboard.parts.alerts.draft import NEW_FORM, edit_form
from dashboard.parts.alerts.form import EDITING, MANAGE_NOTICE, MANAGE_RULE, rule_form, start_edit, stop_edit
from dashboard.parts.alerts.silences import show_silences
from dashboard.parts.alerts.tables import show_budgets, show_deliveries, show_events, show_rules

MANAGE_ERROR = "alert_manage_error"


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
        stop_edit()


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
    edit.button("Edit", key="alert_edit", on_click=start_edit, args=(rule,), icon=":material/edit:")
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


def render(context: ui.Context) -> None:
    """Rules (firing first), budgets, what fires now, manage or edit one, add one, silences, digests, and the
    history."""
    rules = alerts_client.rules(context.api, context.token)
    events = alerts_client.events(context.api, context.token)
    show_rules(rules)
    show_budgets(alerts_client.budgets(context.api, context.token, rules, filters.now_rounded()))
    show_firing(context, rules, events)
    manage(context, rules)
    if editing := st.session_state.get(EDITING):
        st.subheader(f"Edit rule {editing['name']!r} (id {editing['id']})")
        rule_form(context, edit_form(editing), editing)
    st.subheader("New rule")
    rule_form(context, NEW_FORM)
    show_silences(context, rules, alerts_client.silences(context.api, context.token))
    st.subheader("Digests")
    show_digests(context)
    show_events(rules, events)
    show_deliveries(alerts_client.delivery_attempts(context.api, context.token))


ui.live(render, require_calls=False, before_any_call=True)
