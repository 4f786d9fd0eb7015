"""An alert rule form's draft: its widget keys, its starting values, and its widgets read back as a rule body (the
channels are channels.py's)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import streamlit as st

from collector.alerts.rules import (
    ANOMALY_METRICS,
    BASELINES,
    CALENDAR_WINDOWS,
    DEFAULT_MAX_GROUPS,
    DEFAULT_SENSITIVITY,
    ENFORCE_ACTIONS,
    FILTERS,
    KINDS,
    METRICS,
    OPS,
    ROLLING_WINDOWS,
)

WINDOWS = (*ROLLING_WINDOWS, *CALENDAR_WINDOWS)
NOT_ENFORCED = "off"
ENFORCE_CHOICES = (NOT_ENFORCED, *ENFORCE_ACTIONS)
NOT_GROUPED = "none"
DEFAULT_NO_DATA_WINDOW = "30m"
# The metric each kind offers (a no-data rule always counts calls, so it offers none).
KIND_METRICS = {"threshold": METRICS, "anomaly": ANOMALY_METRICS, "no_data": ()}


@dataclass(frozen=True)
class RuleForm:
    """One rule form: a new rule, or an existing one (its id and its stored, masked channels)."""

    prefix: str  # of every widget key and message key
    submit: str
    icon: str
    rule_id: int | None = None
    stored: tuple[dict[str, Any], ...] = ()

    def key(self, field: str) -> str:
        return self.prefix + field

    @property
    def kind(self) -> str:
        """The kind the draft is now (its widget's value): which fields the form shows and sends."""
        kind = st.session_state.get(self.key("kind"))
        return kind if kind in KINDS else KINDS[0]


NEW_FORM = RuleForm("alert_new_", "Create rule", ":material/add:")


def edit_form(rule: dict[str, Any]) -> RuleForm:
    """The form for editing `rule`."""
    stored = tuple(rule.get("channels") or [])
    return RuleForm("alert_edit_", "Save changes", ":material/save:", int(rule["id"]), stored)


def number_value(text: str) -> Any:
    """A typed number as a number; anything else is sent as typed so the collector says what is wrong."""
    try:
        number = float(text)
    except ValueError:
        return text.strip() or None
    return number if math.isfinite(number) else text


def number_text(value: float | None) -> str:
    """A stored number as the form shows it: 1000 not 1000.0, and every digit of a fraction."""
    if value is None:
        return ""
    return str(int(value)) if float(value).is_integer() and abs(value) < 1e15 else repr(float(value))


def initial_values(rule: dict[str, Any] | None = None) -> dict[str, Any]:
    """The form's rule widgets' values (by key suffix): a blank draft, or `rule` as GET showed it."""
    rule = rule or {}
    kind = rule.get("kind") or KINDS[0]
    enforce = rule.get("enforce") or {}
    values: dict[str, Any] = {
        "name": rule.get("name", ""),
        "kind": kind,
        "metric": rule.get("metric", METRICS[0]),
        "window": rule.get("window", WINDOWS[0]) if kind != "no_data" else WINDOWS[0],
        "no_data_window": rule["window"] if kind == "no_data" else DEFAULT_NO_DATA_WINDOW,
        "op": rule.get("op", OPS[0]),
        "threshold": number_text(rule["threshold"]) if "threshold" in rule and kind == "threshold" else "",
        "warning_threshold": number_text(rule.get("warning_threshold")),
        "baseline": rule.get("baseline") or BASELINES[0],
        "sensitivity": float(rule.get("sensitivity") or DEFAULT_SENSITIVITY),
        "group_by": rule.get("group_by") or NOT_GROUPED,
        "max_groups": int(rule.get("max_groups") or DEFAULT_MAX_GROUPS),
        "for": rule.get("for") or "",
        "min_requests": int(rule.get("min_requests") or 0),
        "enabled": bool(rule.get("enabled", True)),
        "enforce_action": enforce.get("action") or NOT_ENFORCED,
        "enforce_downgrade_to": enforce.get("downgrade_to") or "",
    }
    for name in FILTERS:
        values[f"filter_{name}"] = ", ".join((rule.get("filters") or {}).get(name, []))
    return values


def _text(form: RuleForm, suffix: str) -> str:
    return str(st.session_state.get(form.key(suffix)) or "").strip()


def form_filters(form: RuleForm) -> dict[str, list[str]]:
    """The filter inputs (comma-separated values) as the API's filters."""
    filters = {}
    for name in FILTERS:
        if values := [value.strip() for value in _text(form, f"filter_{name}").split(",") if value.strip()]:
            filters[name] = values
    return filters


def form_fields(form: RuleForm) -> dict[str, Any]:
    """The form's widgets (read from session state) as the API's rule body, without channels: only the fields the
    draft's kind has (the collector fills in, and insists on, the rest)."""
    state = st.session_state
    kind = form.kind
    body: dict[str, Any] = {
        "name": str(state.get(form.key("name")) or ""),
        "kind": kind,
        "for": _text(form, "for") or None,
        "filters": form_filters(form),
        "enabled": bool(state.get(form.key("enabled"), True)),
    }
    if kind != "no_data":
        body.update(metric=state.get(form.key("metric")), op=state.get(form.key("op")),
                    min_requests=int(state.get(form.key("min_requests")) or 0))  # fmt: skip
    if kind == "threshold":
        body.update(window=state.get(form.key("window")), threshold=number_value(_text(form, "threshold")))
        if warning := _text(form, "warning_threshold"):
            body["warning_threshold"] = number_value(warning)
        if enforce := form_enforce(form):  # only when set: a collector older than the guard knows no such field
            body["enforce"] = enforce
    elif kind == "anomaly":
        body.update(baseline=state.get(form.key("baseline")), sensitivity=state.get(form.key("sensitivity")))
    else:
        body["window"] = _text(form, "no_data_window")
    group_by = state.get(form.key("group_by")) or NOT_GROUPED
    if group_by != NOT_GROUPED:
        body.update(group_by=group_by, max_groups=int(state.get(form.key("max_groups")) or DEFAULT_MAX_GROUPS))
    return body


def form_enforce(form: RuleForm) -> dict[str, Any] | None:
    """The rule's enforce part: None when off; the downgrade model only as typed (the collector checks it)."""
    action = st.session_state.get(form.key("enforce_action")) or NOT_ENFORCED
    if action == NOT_ENFORCED:
        return None
    return {"action": action, "downgrade_to": _text(form, "enforce_downgrade_to") or None}
