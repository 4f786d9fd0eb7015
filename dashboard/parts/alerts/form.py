"""The alert rule form: its widgets (only those the draft's kind has), the collector's 422 beside the field at fault,
and the callbacks that create, save, preview or edit a rule."""

from __future__ import annotations

from typing import Any

import streamlit as st

from collector.alerts.rules import BASELINES, FILTERS, GROUP_BY, KINDS, MAX_GROUPS, OPS
from dashboard.data import alerts_client
from dashboard.data.client import ApiError
from dashboard.parts import ui
from dashboard.parts.alerts import channels, draft
from dashboard.parts.alerts.draft import ENFORCE_CHOICES, KIND_METRICS, NOT_GROUPED, WINDOWS, RuleForm, edit_form
from dashboard.parts.alerts.errors import Beside, reject
from dashboard.parts.alerts.preview import show_preview

# The page's rule picker and its notice: saving an edit reports there and selects the rule again.
MANAGE_NOTICE = "alert_manage_notice"
MANAGE_RULE = "alert_manage_rule"
EDITING = "alert_editing"  # the rule being edited, as GET showed it when "Edit" was pressed
KIND_LABELS = {"threshold": "Threshold", "anomaly": "Anomaly (against its own history)", "no_data": "No data"}
DIRECTIONS = {">": "above the band (>)", ">=": "at or above (>=)", "<": "below the band (<)", "<=": "at or below (<=)"}


def initial_values(rule: dict[str, Any] | None = None) -> dict[str, Any]:
    """Every widget's starting value (by key suffix): the rule's fields, then its channels."""
    return {**draft.initial_values(rule), **channels.initial_values(list((rule or {}).get("channels") or []))}


def form_body(form: RuleForm) -> dict[str, Any]:
    """The whole rule body to POST or PUT."""
    return {**draft.form_fields(form), "channels": channels.form_channels(form)}


def _clear_messages(form: RuleForm) -> None:
    for suffix in ("error", "notice", "preview"):
        st.session_state.pop(form.key(suffix), None)


def _submit(api: str, token: str | None, form: RuleForm) -> None:
    """Create/Save button: POST a new rule or PUT the edited one; the verdict is kept for the next render."""
    _clear_messages(form)
    try:
        body = form_body(form)
        if form.rule_id is None:
            rule_id = alerts_client.create_rule(api, token, body)
        else:
            alerts_client.update_rule(api, token, form.rule_id, body)
    except ApiError as error:
        reject(form.key("error"), error)
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
    body = {**draft.form_fields(form), "channels": []}
    try:
        st.session_state[form.key("preview")] = (body, alerts_client.preview(api, token, body))
    except ApiError as error:
        reject(form.key("error"), error)


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


def _choice(form: RuleForm, suffix: str, options: tuple[str, ...]) -> None:
    """Keep a select's value among its options (they change with the kind)."""
    if st.session_state.get(form.key(suffix)) not in options:
        st.session_state[form.key(suffix)] = options[0]


def kind_fields(form: RuleForm, beside: Beside) -> None:
    """What the rule watches, by kind: a metric against thresholds, against its own history, or the absence of calls."""
    kind = form.kind
    if kind == "threshold":
        _choice(form, "metric", KIND_METRICS[kind])
        metric, window, op, threshold, warning = st.columns(5)
        with metric:
            st.selectbox("Metric", KIND_METRICS[kind], key=form.key("metric"))
            beside.show("metric")
        with window:
            st.selectbox("Window", WINDOWS, key=form.key("window"), help="Rolling (5m, 1h, 24h) or UTC day/month")
            beside.show("window")
        with op:
            st.selectbox("Condition", OPS, key=form.key("op"))
            beside.show("op")
        with threshold:
            st.text_input("Critical threshold", key=form.key("threshold"), placeholder="0.05")
            beside.show("threshold")
        with warning:
            st.text_input(
                "Warning threshold (optional)",
                key=form.key("warning_threshold"),
                placeholder="0.02",
                help="Crossed first: the rule warns, then escalates to critical (and back)",
            )
            beside.show("warning_threshold")
    elif kind == "anomaly":
        _choice(form, "metric", KIND_METRICS[kind])
        metric, op, baseline, sensitivity = st.columns(4)
        with metric:
            st.selectbox("Metric (last hour)", KIND_METRICS[kind], key=form.key("metric"))
            beside.show("metric", "window")
        with op:
            st.selectbox("Fires when", OPS, key=form.key("op"), format_func=DIRECTIONS.get)
            beside.show("op")
        with baseline:
            st.selectbox(
                "Baseline",
                BASELINES,
                key=form.key("baseline"),
                help="hour_of_week: the same hour over the last 4 weeks; rolling_median: the last 24 hours",
            )
            beside.show("baseline")
        with sensitivity:
            st.number_input(
                "Sensitivity",
                min_value=0.0,
                step=0.5,
                key=form.key("sensitivity"),
                help="How many robust spreads from the baseline's median is unusual (3 by default)",
            )
            beside.show("sensitivity")
    else:
        window, _ = st.columns([1, 3])
        with window:
            st.text_input(
                "No calls for",
                key=form.key("no_data_window"),
                placeholder="30m",
                help="5m to 24h, in whole 5 minutes: fires when calls seen in the last 7 days stop",
            )
            beside.show("window", "metric", "op", "threshold")


def group_fields(form: RuleForm, beside: Beside) -> None:
    """Per entity: each value of one label gets its own state and notifications, up to a cap."""
    group_by, cap = st.columns(2)
    with group_by:
        st.selectbox(
            "One alert per",
            (NOT_GROUPED, *GROUP_BY),
            key=form.key("group_by"),
            help="Each value (each team, end user, …) has its own state, events and notifications",
        )
        beside.show("group_by")
    with cap:
        grouped = st.session_state.get(form.key("group_by")) not in (None, NOT_GROUPED)
        st.number_input(
            "Max groups",
            min_value=1,
            max_value=MAX_GROUPS,
            step=1,
            key=form.key("max_groups"),
            disabled=not grouped,
            help="The top groups by the metric; the rest are counted as left out",
        )
        beside.show("max_groups")


def rule_fields(form: RuleForm, beside: Beside) -> None:
    """The rule's widgets, keyed by the form's prefix (their values live in session state)."""
    name, kind = st.columns([3, 1])
    with name:
        st.text_input("Name", key=form.key("name"), placeholder="Error rate for search")
        beside.show("name")
    with kind:
        st.selectbox("Kind", KINDS, key=form.key("kind"), format_func=KIND_LABELS.get)
        beside.show("kind")
    kind_fields(form, beside)
    group_fields(form, beside)
    hold, minimum, enabled = st.columns(3)
    with hold:
        st.text_input("For (optional)", key=form.key("for"), placeholder="5m", help="How long it must hold: 90s, 5m")
        beside.show("for")
    if form.kind != "no_data":
        with minimum:
            st.number_input("Min requests", min_value=0, step=1, key=form.key("min_requests"))
            beside.show("min_requests")
    enabled.checkbox("Enabled", key=form.key("enabled"))
    st.caption("Filters (optional): comma-separated values; a rule watches calls matching all of them.")
    for column, name in zip(st.columns(len(FILTERS)), FILTERS, strict=True):
        column.text_input(name.replace("_", " ").capitalize(), key=form.key(f"filter_{name}"))
    beside.show("filters")
    if form.kind == "threshold":
        enforce_inputs(form)
        beside.show("enforce")
    st.caption("Channels: where firing and resolved alerts go. Secrets are never shown; left blank, they are kept.")
    channels.channel_inputs(form, beside)
    beside.show("channels")


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
    """A rule form, blank or for editing `rule`; the collector validates, and its 422 is shown beside the field.

    Not an `st.form`: which fields are drawn depends on the kind and each channel's type, chosen in the form."""
    # Streamlit forgets a widget's value once it is not drawn (another page): start again from the rule.
    for suffix, value in initial_values(rule).items():
        st.session_state.setdefault(form.key(suffix), value)
    beside = Beside(st.session_state.get(form.key("error")))
    with st.container(border=True, key=form.key("box")):
        rule_fields(form, beside)
        buttons = st.columns(3 if form.rule_id is not None else 2)
        buttons[0].button(
            form.submit,
            key=form.key("submit"),
            on_click=_submit,
            args=(context.api, context.token, form),
            icon=form.icon,
            type="primary",
        )
        buttons[1].button(
            "Preview over the last 7 days",
            key=form.key("preview_button"),
            on_click=_preview,
            args=(context.api, context.token, form),
            icon=":material/query_stats:",
        )
        if form.rule_id is not None:
            buttons[2].button("Cancel", key=form.key("cancel"), on_click=stop_edit, icon=":material/close:")
        beside.rest()
        if notice := st.session_state.get(form.key("notice")):
            st.success(notice)
    show_preview(st.session_state.get(form.key("preview")))
