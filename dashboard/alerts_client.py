"""The collector's alert API for the dashboard: rules (list, create, update, delete) and the event history.

Reads are cached for a few seconds; writes are never cached and clear the read caches, so the next render
shows what the collector now holds.
"""

from __future__ import annotations

from typing import Any

import httpx2
import streamlit as st

from dashboard import client
from dashboard.client import ApiError

RULES_PATH = "/api/v1/alert-rules"
EVENTS_PATH = "/api/v1/alert-events"
READ_TTL = 5  # seconds: state changes should show up quickly


class RuleRejectedError(ApiError):
    """The collector refused a rule (422): which field, and why, as the API said it."""

    def __init__(self, message: str, field: str | None) -> None:
        super().__init__(message, 422, field)
        self.field = field


def _request(
    method: str,
    api: str,
    token: str | None,
    path: str,
    *,
    params: list[tuple[str, str]] | None = None,
    body: Any = None,
) -> httpx2.Response:
    """One call to the alert API (through the dashboard's one HTTP function); a 422 is a RuleRejectedError."""
    try:
        return client.request(method, api, token, path, params or [], body)
    except ApiError as error:
        if error.status == 422:
            raise RuleRejectedError(error.detail, error.parameter) from None
        raise


@st.cache_data(ttl=READ_TTL, show_spinner=False, max_entries=20)
def rules(api: str, token: str | None) -> list[dict[str, Any]]:
    """Every rule with its current state and value (channel URLs masked), as the API sends them."""
    return _request("GET", api, token, RULES_PATH).json()["rules"]


@st.cache_data(ttl=READ_TTL, show_spinner=False, max_entries=20)
def events(api: str, token: str | None, limit: int = 100) -> list[dict[str, Any]]:
    """State changes, newest first."""
    return _request("GET", api, token, EVENTS_PATH, params=[("limit", str(limit))]).json()["events"]


@st.cache_data(ttl=READ_TTL, show_spinner=False, max_entries=20)
def delivery_attempts(api: str, token: str | None) -> list[dict[str, Any]]:
    """Notification delivery attempts, newest first (channel hosts only)."""
    return _request("GET", api, token, "/api/v1/notification-attempts").json()["attempts"]


def preview(api: str, token: str | None, body: dict[str, Any]) -> dict[str, Any]:
    """A draft rule replayed hour by hour over the last 7 days: points (time, value, state) and fired_at."""
    return _request("POST", api, token, f"{RULES_PATH}/preview", body=body).json()


def send_test(api: str, token: str | None, rule_id: int) -> int:
    """Ask the collector to send a test notification to the rule's channels; how many channels."""
    return int(_request("POST", api, token, f"{RULES_PATH}/{rule_id}/test").json()["channels"])


def clear() -> None:
    """Forget cached reads (after any write)."""
    rules.clear()
    events.clear()


def create_rule(api: str, token: str | None, body: dict[str, Any]) -> int:
    """POST a new rule; its id."""
    try:
        return int(_request("POST", api, token, RULES_PATH, body=body).json()["id"])
    finally:
        clear()


def update_rule(api: str, token: str | None, rule_id: int, body: dict[str, Any]) -> None:
    """PUT a rule's full body (channels sent are the channels kept: the API never returns real URLs)."""
    try:
        _request("PUT", api, token, f"{RULES_PATH}/{rule_id}", body=body)
    finally:
        clear()


def delete_rule(api: str, token: str | None, rule_id: int) -> None:
    """DELETE a rule."""
    try:
        _request("DELETE", api, token, f"{RULES_PATH}/{rule_id}")
    finally:
        clear()


def editable_body(rule: dict[str, Any], channels: list[dict[str, str]], **changes: Any) -> dict[str, Any]:
    """A rule as GET shows it, turned back into a PUT body with `channels` (re-entered URLs) and `changes`."""
    body = {
        "name": rule["name"],
        "metric": rule["metric"],
        "window": rule["window"],
        "op": rule["op"],
        "threshold": rule["threshold"],
        "for": rule.get("for"),
        "filters": rule.get("filters") or {},
        "channels": channels,
        "enabled": rule["enabled"],
        "min_requests": rule.get("min_requests") or 0,
    }
    body.update(changes)
    return body
