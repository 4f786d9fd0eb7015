"""Digests: scheduled spend reports by e-mail or chat; the list, a form to add one (with a preview of its report and
chart), and for one digest: send now, enable/disable, delete, and its deliveries.

`show(context)` draws it all, on the Alerts page (dashboard/views/alerts.py).
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from collector.alerts.rules import CHANNEL_TYPES, FILTERS
from collector.digests.spec import ALERT_ONLY_CHANNELS, DEFAULT_SEND_HOUR, SCHEDULES
from dashboard.data import digests_client
from dashboard.data.client import ApiError
from dashboard.parts import ui

KEY = "digest_"  # every widget's key starts with it
CHANNELS = tuple(kind for kind in CHANNEL_TYPES if kind not in ALERT_ONLY_CHANNELS)
FORM = "digest_new"
NO_CHANNEL = "(none)"


def _key(name: str) -> str:
    return f"{KEY}{name}"


def _values(text: str) -> list[str]:
    return [value.strip() for value in text.split(",") if value.strip()]


def _channel() -> list[dict[str, Any]]:
    """The form's one channel: a URL for the chat and webhook channels, the SMTP fields for e-mail."""
    state = st.session_state
    kind = state[_key("channel_type")]
    if kind == NO_CHANNEL:
        return []
    if kind != "email":
        return [{"type": kind, "url": state[_key("channel_url")].strip()}]
    channel = {"type": "email", "host": state[_key("smtp_host")].strip(), "port": int(state[_key("smtp_port")]),
               "from": state[_key("smtp_from")].strip(), "to": _values(state[_key("smtp_to")]),
               "starttls": state[_key("smtp_starttls")]}  # fmt: skip
    if state[_key("smtp_username")].strip():
        channel.update(username=state[_key("smtp_username")].strip(), password=state[_key("smtp_password")])
    return [channel]


def _body() -> dict[str, Any]:
    state = st.session_state
    filters = {name: _values(state[_key(f"filter_{name}")]) for name in FILTERS}
    return {
        "name": state[_key("name")],
        "schedule": state[_key("schedule")],
        "send_hour": int(state[_key("send_hour")]),
        "filters": {name: values for name, values in filters.items() if values},
        "channels": _channel(),
    }


def _rejected(error: ApiError) -> str:
    if isinstance(error, digests_client.DigestRejectedError):
        return f"{error.field or 'digest'}: {error.message}"
    return error.message


def _create(api: str, token: str | None) -> None:
    st.session_state.pop(_key("preview"), None)
    st.session_state.pop(_key("form_error"), None)
    body = _body()
    try:
        digest_id = digests_client.create(api, token, body)
    except ApiError as error:
        st.session_state[_key("form_error")] = _rejected(error)
        return
    st.session_state[_key("form_notice")] = f"Created digest {body['name']!r} (id {digest_id})."
    st.session_state[_key("manage")] = digest_id


def _preview(api: str, token: str | None) -> None:
    st.session_state.pop(_key("form_error"), None)
    st.session_state.pop(_key("form_notice"), None)
    try:
        st.session_state[_key("preview")] = digests_client.preview(api, token, {**_body(), "channels": []})
    except ApiError as error:
        st.session_state[_key("form_error")] = _rejected(error)


def _send_now(api: str, token: str | None, digest_id: int) -> None:
    st.session_state.pop(_key("manage_error"), None)
    try:
        sent = digests_client.send_now(api, token, digest_id)
    except ApiError as error:
        st.session_state[_key("manage_error")] = _rejected(error)
        return
    period = sent["period"]
    st.session_state[_key("manage_notice")] = (
        f"Sending the report for {period['from']} to {period['to']} (UTC, end excluded) to {sent['channels']} "
        "channel(s); see its deliveries below."
    )


def _toggle(api: str, token: str | None, digest: dict[str, Any]) -> None:
    st.session_state.pop(_key("manage_error"), None)
    try:
        digests_client.update(
            api, token, digest["id"], digests_client.editable_body(digest, enabled=not digest["enabled"])
        )
    except ApiError as error:
        st.session_state[_key("manage_error")] = _rejected(error)


def _delete(api: str, token: str | None, digest_id: int) -> None:
    st.session_state.pop(_key("manage_error"), None)
    try:
        digests_client.delete(api, token, digest_id)
    except ApiError as error:
        st.session_state[_key("manage_error")] = _rejected(error)


def _where(digest: dict[str, Any]) -> str:
    return ", ".join(f"{name}={'|'.join(values)}" for name, values in digest["filters"].items()) or "all calls"


def show_digests(digests: list[dict[str, Any]]) -> None:
    if not digests:
        st.info("No digests yet: add one below to get a spend report by e-mail or chat every day, week or month.")
        return
    rows = [
        {"Digest": d["name"], "Schedule": f"{d['schedule']} at {d['send_hour']:02d}:00 UTC", "Calls": _where(d),
         "Channels": ", ".join(channel["type"] for channel in d["channels"]) or "none",
         "Enabled": d["enabled"], "Last period sent": d["last_period"] or "—", "Next report": d["next_send_at"] or "—"}
        for d in digests
    ]  # fmt: skip
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")


def manage(context: ui.Context, digests: list[dict[str, Any]]) -> None:
    """Pick one digest: send its report now, enable or disable it, delete it; its deliveries."""
    if not digests:
        return
    by_id = {digest["id"]: digest for digest in digests}
    if st.session_state.get(_key("manage")) not in by_id:
        st.session_state[_key("manage")] = next(iter(by_id))
    digest_id = st.selectbox("Digest", list(by_id), format_func=lambda key: f"{by_id[key]['name']} (id {key})",
                             key=_key("manage"))  # fmt: skip
    digest = by_id[digest_id]
    send, toggle, delete = st.columns(3)
    send.button("Send now", key=_key("send_now"), on_click=_send_now, args=(context.api, context.token, digest_id),
                icon=":material/send:", disabled=not digest["channels"])  # fmt: skip
    toggle.button("Disable" if digest["enabled"] else "Enable", key=_key("toggle"), on_click=_toggle,
                  args=(context.api, context.token, digest))  # fmt: skip
    delete.button("Delete", key=_key("delete"), on_click=_delete, args=(context.api, context.token, digest_id),
                  icon=":material/delete:", type="primary")  # fmt: skip
    if message := st.session_state.get(_key("manage_error")):
        st.error(message)
    elif notice := st.session_state.pop(_key("manage_notice"), None):
        st.success(notice)
    show_deliveries(digests_client.deliveries(context.api, context.token, digest_id))


def show_deliveries(deliveries: list[dict[str, Any]]) -> None:
    if not deliveries:
        st.caption("No reports sent yet.")
        return
    rows = [
        {"Time": send["time"], "Why": "scheduled" if send["reason"] == "schedule" else "send now",
         "Period": f"{send['period']['from']} to {send['period']['to']}", "Channel": attempt["channel_type"],
         "Host": attempt["channel_host"], "Attempt": attempt["attempt"], "Delivered": attempt["ok"],
         "Error": attempt["error"] or ""}
        for send in deliveries
        for attempt in send["attempts"] or [{"channel_type": "—", "channel_host": "", "attempt": 0, "ok": False,
                                             "error": "not attempted yet"}]
    ]  # fmt: skip
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")


def digest_form(context: ui.Context) -> None:
    """A new digest: schedule, filters and one channel; the collector validates, its 422 shown beside the form."""
    defaults = {"name": "", "schedule": "weekly", "send_hour": DEFAULT_SEND_HOUR, "channel_type": NO_CHANNEL,
                "channel_url": "", "smtp_host": "", "smtp_port": 587, "smtp_username": "", "smtp_password": "",
                "smtp_from": "", "smtp_to": "", "smtp_starttls": True,
                **{f"filter_{name}": "" for name in FILTERS}}  # fmt: skip
    for name, value in defaults.items():
        st.session_state.setdefault(_key(name), value)
    with st.form(FORM):
        st.text_input("Name", key=_key("name"), placeholder="Search team, weekly")
        schedule, hour = st.columns(2)
        reports_on = "Daily: yesterday; weekly (Mondays): last week; monthly (the 1st): last month"
        schedule.selectbox("Schedule", SCHEDULES, key=_key("schedule"), help=reports_on)
        hour.number_input("Send hour (UTC)", min_value=0, max_value=23, step=1, key=_key("send_hour"))
        st.caption("Filters (optional): comma-separated values; the report covers calls matching all of them.")
        for column, name in zip(st.columns(len(FILTERS)), FILTERS, strict=True):
            column.text_input(name.replace("_", " ").capitalize(), key=_key(f"filter_{name}"))
        kind, url = st.columns([1, 3])
        kind.selectbox("Channel", (NO_CHANNEL, *CHANNELS), key=_key("channel_type"))
        url.text_input("Channel URL (Slack, Teams, Discord, webhooks)", key=_key("channel_url"),
                       placeholder="https://hooks.slack.com/…")  # fmt: skip
        with st.expander("E-mail channel (SMTP)"):
            host, port, starttls = st.columns([3, 1, 1], vertical_alignment="bottom")
            host.text_input("SMTP host", key=_key("smtp_host"))
            port.number_input("Port", min_value=1, max_value=65535, step=1, key=_key("smtp_port"))
            starttls.checkbox("STARTTLS", key=_key("smtp_starttls"))
            user, password = st.columns(2)
            user.text_input("Username (optional)", key=_key("smtp_username"))
            password.text_input("Password", key=_key("smtp_password"), type="password")
            sender, to = st.columns(2)
            sender.text_input("From", key=_key("smtp_from"), placeholder="llmledger <reports@example.com>")
            to.text_input("To (comma-separated)", key=_key("smtp_to"))
        create, preview = st.columns(2)
        create.form_submit_button("Create digest", on_click=_create, args=(context.api, context.token),
                                  icon=":material/add:", type="primary")  # fmt: skip
        preview.form_submit_button("Preview the report", on_click=_preview, args=(context.api, context.token),
                                   icon=":material/preview:")  # fmt: skip
    if message := st.session_state.get(_key("form_error")):
        st.error(message)
    elif notice := st.session_state.pop(_key("form_notice"), None):
        st.success(notice)
    if previewed := st.session_state.get(_key("preview")):
        text, png, alt = previewed
        st.markdown("**Preview** (not sent): the report on the last complete period, as a channel gets it.")
        st.image(png, caption=alt)
        st.code(text, language=None)


def show(context: ui.Context) -> None:
    """Digests: the list, one to manage, and the form to add one."""
    digests = digests_client.digests(context.api, context.token)
    show_digests(digests)
    manage(context, digests)
    st.subheader("New digest")
    digest_form(context)
