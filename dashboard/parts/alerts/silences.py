"""Silences on the Alerts page: the list (active first), ending one, and a form to mute a rule, one of its groups, or
everything matching filters until a time, with who and why."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pandas as pd
import streamlit as st

from collector.alerts.rules import FILTERS, GROUP_BY
from dashboard.data import alerts_client
from dashboard.data.client import ApiError
from dashboard.parts import ui
from dashboard.parts.alerts.errors import Beside, reject

KEY = "alert_silence_"  # of every widget and message key
NAMES = tuple(dict.fromkeys((*FILTERS, *GROUP_BY)))  # what a silence's filters may name
ANY_RULE = 0  # the rule picker's "no rule: match the filters" choice
DEFAULT_LENGTH = timedelta(hours=2)


def _key(suffix: str) -> str:
    return KEY + suffix


def ends_at(day: date, at: time) -> str:
    """The end the date and time inputs give (UTC), as RFC 3339."""
    return datetime.combine(day, at, tzinfo=UTC).isoformat()


def body() -> dict[str, Any]:
    """The silence the inputs describe, as the API takes it (the collector checks it and names what is wrong)."""
    state = st.session_state
    filters = {}
    for name in NAMES:
        typed = str(state.get(_key(f"filter_{name}")) or "").split(",")
        if values := [value.strip() for value in typed if value.strip()]:
            filters[name] = values
    rule_id = state.get(_key("rule")) or ANY_RULE
    return {
        "rule_id": rule_id if rule_id != ANY_RULE else None,
        "group": str(state.get(_key("group")) or "").strip() or None,
        "filters": filters,
        "ends_at": ends_at(state[_key("end_date")], state[_key("end_time")]),
        "created_by": str(state.get(_key("by")) or ""),
        "reason": str(state.get(_key("reason")) or ""),
    }


def _create(api: str, token: str | None) -> None:
    """Create button: POST the silence; the verdict is kept for the next render."""
    for suffix in ("error", "notice"):
        st.session_state.pop(_key(suffix), None)
    try:
        silence_id = alerts_client.create_silence(api, token, body())
    except ApiError as error:
        reject(_key("error"), error)
        return
    st.session_state[_key("notice")] = f"Silence {silence_id} created."


def _end(api: str, token: str | None, silence_id: int) -> None:
    """End button: DELETE the silence (its muted events keep saying so)."""
    for suffix in ("error", "notice"):
        st.session_state.pop(_key(suffix), None)
    try:
        alerts_client.delete_silence(api, token, silence_id)
    except ApiError as error:
        reject(_key("error"), error)
        return
    st.session_state[_key("notice")] = f"Silence {silence_id} ended."


def what(silence: dict[str, Any], names: dict[int, str]) -> str:
    """What a silence mutes, in words: `rule 'x' (id 3), group search; team=search`."""
    parts = []
    if silence["rule_id"] is not None:
        parts.append(f"rule {names.get(silence['rule_id'], 'deleted')!r} (id {silence['rule_id']})")
    if silence.get("group") is not None:
        parts.append(f"group {silence['group']}")
    parts += [f"{name}={','.join(values)}" for name, values in (silence.get("filters") or {}).items()]
    return "; ".join(parts)


def show_list(context: ui.Context, silences: list[dict[str, Any]], names: dict[int, str]) -> None:
    """The silences, active ones first, and a button to end the active one picked."""
    if not silences:
        st.caption("No silences.")
        return
    ordered = sorted(silences, key=lambda silence: not silence["active"])
    rows = [
        {
            "id": silence["id"],
            "Mutes": what(silence, names),
            "Ends (UTC)": silence["ends_at"][:16].replace("T", " "),
            "By": silence["created_by"],
            "Reason": silence["reason"],
            "Active": bool(silence["active"]),
        }
        for silence in ordered
    ]
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
    active = {silence["id"]: silence for silence in ordered if silence["active"]}
    if not active:
        return
    pick, end = st.columns([3, 1], vertical_alignment="bottom")
    silence_id = pick.selectbox("Active silence", list(active), key=_key("pick"),
                                format_func=lambda key: f"{key}: {what(active[key], names)}")  # fmt: skip
    end.button("End silence", key=_key("end"), on_click=_end, args=(context.api, context.token, silence_id),
               icon=":material/volume_up:")  # fmt: skip


def show_form(context: ui.Context, rules: list[dict[str, Any]]) -> None:
    """Mute a rule, one group of it, or whatever matches the filters, until a time."""
    now = datetime.now(UTC) + DEFAULT_LENGTH
    st.session_state.setdefault(_key("end_date"), now.date())
    st.session_state.setdefault(_key("end_time"), now.time().replace(second=0, microsecond=0, tzinfo=None))
    names = {rule["id"]: rule["name"] for rule in rules}
    if st.session_state.get(_key("rule")) not in (ANY_RULE, *names):
        st.session_state[_key("rule")] = ANY_RULE
    beside = Beside(st.session_state.get(_key("error")))
    with st.container(border=True, key="alert_silence_form"):
        rule, group = st.columns(2)
        with rule:
            st.selectbox("Rule", (ANY_RULE, *names), key=_key("rule"),
                         format_func=lambda key: names[key] if key else "any rule its filters match")  # fmt: skip
            beside.show("rule_id")
        with group:
            st.text_input("Group (optional, of that rule)", key=_key("group"), placeholder="search")
            beside.show("group")
        st.caption("Filters (optional): comma-separated values; muted are the rules and groups within all of them.")
        for column, name in zip(st.columns(len(NAMES)), NAMES, strict=True):
            column.text_input(name.replace("_", " ").capitalize(), key=_key(f"filter_{name}"))
        beside.show("filters")
        day, at, by = st.columns(3)
        day.date_input("Ends on (UTC)", key=_key("end_date"))
        with at:
            st.time_input("at (UTC)", key=_key("end_time"), step=timedelta(minutes=15))
            beside.show("ends_at")
        with by:
            st.text_input("By", key=_key("by"), placeholder="your name")
            beside.show("created_by")
        st.text_input("Reason", key=_key("reason"), placeholder="planned migration of the search index")
        beside.show("reason")
        st.button("Create silence", key=_key("create"), on_click=_create, args=(context.api, context.token),
                  icon=":material/volume_off:", type="primary")  # fmt: skip
        beside.rest()
        if notice := st.session_state.get(_key("notice")):
            st.success(notice)


def show_silences(context: ui.Context, rules: list[dict[str, Any]], silences: list[dict[str, Any]]) -> None:
    """The Silences section: what is muted, and a form to mute more. A muted transition is recorded, not sent."""
    st.subheader("Silences")
    st.caption("A silenced rule or group still changes state and is recorded in the history, but nobody is notified.")
    show_list(context, silences, {rule["id"]: rule["name"] for rule in rules})
    show_form(context, rules)
