"""Firing alerts on the Alerts page, each with an Acknowledge button: who is on it, shown with the event and the
rule's state until the alert changes again."""

from __future__ import annotations

from typing import Any

import streamlit as st

from dashboard.data import alerts_client
from dashboard.data.client import ApiError
from dashboard.parts import ui
from dashboard.parts.alerts.errors import Beside, reject

BY = "alert_ack_by"
ERROR, NOTICE = "alert_ack_error", "alert_ack_notice"
SHOWN = 20  # firing alerts listed; more than this and the history below has them


def firing_now(rules: list[dict[str, Any]]) -> set[tuple[int, str | None]]:
    """(rule id, group value or None) of every rule, or group of a grouped rule, firing now."""
    firing: set[tuple[int, str | None]] = set()
    for rule in rules:
        if not rule.get("group_by"):
            if rule["state"] == "firing":
                firing.add((rule["id"], None))
            continue
        firing |= {(rule["id"], group["group"]) for group in rule.get("groups") or [] if group["state"] == "firing"}
    return firing


def _group_value(event: dict[str, Any]) -> str | None:
    group = event.get("group") or {}
    return next(iter(group.values()), None)


def firing_events(rules: list[dict[str, Any]], events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The event that started each alert firing now (the newest firing event of its rule and group)."""
    firing, found = firing_now(rules), {}
    for event in events:  # newest first
        key = (event["rule_id"], _group_value(event))
        if event["to_state"] == "firing" and key in firing and key not in found:
            found[key] = event
    return list(found.values())[:SHOWN]


def _acknowledge(api: str, token: str | None, event_id: int) -> None:
    """Acknowledge button: POST who is on it; the verdict is kept for the next render."""
    for key in (ERROR, NOTICE):
        st.session_state.pop(key, None)
    by = str(st.session_state.get(BY) or "").strip()
    try:
        alerts_client.acknowledge(api, token, event_id, by)
    except ApiError as error:
        reject(ERROR, error)
        return
    st.session_state[NOTICE] = f"Acknowledged by {by}."


def show_firing(context: ui.Context, rules: list[dict[str, Any]], events: list[dict[str, Any]]) -> None:
    """Each alert firing now, who acknowledged it, or a button to acknowledge it."""
    found = firing_events(rules, events)
    if not found:
        return
    st.subheader("Firing now")
    names = {rule["id"]: rule["name"] for rule in rules}
    beside = Beside(st.session_state.get(ERROR))
    with st.container(border=True, key="alert_firing"):
        who, _ = st.columns([1, 2])
        with who:
            st.text_input("Acknowledge as", key=BY, placeholder="your name")
            beside.show("by")
        for event in found:
            _firing_line(context, event, names)
        beside.rest()
        if notice := st.session_state.pop(NOTICE, None):
            st.success(notice)


def _firing_line(context: ui.Context, event: dict[str, Any], names: dict[int, str]) -> None:
    """One firing alert: what, since when, and who acknowledged it or a button to."""
    group = _group_value(event)
    text, button = st.columns([4, 1], vertical_alignment="center")
    title = names.get(event["rule_id"], f"rule {event['rule_id']}") + (f" — {group}" if group else "")
    since = event["time"][:16].replace("T", " ")
    line = f"**{title}**: {event.get('severity') or 'critical'} since {since} UTC, value {event['value']}"
    if event.get("acked_by"):
        text.markdown(f"{line}; acknowledged by {event['acked_by']}")
        return
    text.markdown(line)
    button.button("Acknowledge", key=f"alert_ack_{event['id']}", on_click=_acknowledge,
                  args=(context.api, context.token, event["id"]), icon=":material/check:")  # fmt: skip
