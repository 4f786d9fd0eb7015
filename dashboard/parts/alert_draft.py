"""An alert rule form's draft: its widget keys, its starting values, and its widgets read back as a rule body."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import streamlit as st

from collector.alerts.rules import (
    CALENDAR_WINDOWS,
    CHANNEL_TYPES,
    ENFORCE_ACTIONS,
    FILTERS,
    METRICS,
    OPS,
    ROLLING_WINDOWS,
)

WINDOWS = (*ROLLING_WINDOWS, *CALENDAR_WINDOWS)
NOT_ENFORCED = "off"
ENFORCE_CHOICES = (NOT_ENFORCED, *ENFORCE_ACTIONS)


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
    enforce = rule.get("enforce") or {}
    values: dict[str, Any] = {
        "name": rule.get("name", ""),
        "metric": rule.get("metric", METRICS[0]),
        "window": rule.get("window", WINDOWS[0]),
        "op": rule.get("op", OPS[0]),
        "threshold": threshold_text(rule["threshold"]) if "threshold" in rule else "",
        "for": rule.get("for") or "",
        "min_requests": int(rule.get("min_requests") or 0),
        "enabled": bool(rule.get("enabled", True)),
        "enforce_action": enforce.get("action") or NOT_ENFORCED,
        "enforce_downgrade_to": enforce.get("downgrade_to") or "",
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
    body = {
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
    if enforce := form_enforce(form):  # only when set: a collector older than the guard knows no such field
        body["enforce"] = enforce
    return body


def form_enforce(form: RuleForm) -> dict[str, Any] | None:
    """The rule's enforce part: None when off; the downgrade model only as typed (the collector checks it)."""
    state = st.session_state
    action = state.get(form.key("enforce_action")) or NOT_ENFORCED
    if action == NOT_ENFORCED:
        return None
    model = str(state.get(form.key("enforce_downgrade_to")) or "").strip()
    return {"action": action, "downgrade_to": model or None}


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
