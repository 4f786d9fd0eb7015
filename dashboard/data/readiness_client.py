"""The collector's readiness API for the dashboard — a service's scorecard, its score over time, attestations, the
features marked batch-eligible, creating the alert rule an item's fix proposes — and the page's pure helpers.

Reads are cached briefly; every write clears them, so the next render shows the item scored again.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import httpx2
import pandas as pd
import streamlit as st

from dashboard.data import alerts_client, client
from dashboard.parts import ui

READINESS_PATH = "/api/v1/readiness"
HISTORY_PATH = "/api/v1/readiness/history"
ATTEST_PATH = "/api/v1/readiness/attest"
BATCH_PATH = "/api/v1/readiness/batch-features"
TTL = 30  # seconds: scores move with traffic; a write clears the cache at once
ATTESTED_ITEMS = ("test.load", "test.mocked")  # only attested (collector/readiness/model.py)
ATTESTABLE_ITEMS = (*ATTESTED_ITEMS, "eh.circuit_breaker")  # observed, or attested (a breaker of the app's own)
BATCH_ITEM = "cost.batch"
BAND_COLORS = {"production ready": "green", "needs improvement": "orange", "not ready": "red"}
# Material icons, not emoji: they render without an emoji font (Debian's Chromium has none).
STATUS_ICONS = {
    "pass": ":green[:material/check_circle:]",
    "fail": ":red[:material/cancel:]",
    "unknown": ":gray[:material/help:]",
}
MIN_HISTORY_DAYS, MAX_HISTORY_DAYS = 7, 365  # a week at least: each day costs the collector a scan
# Evidence values that are fractions 0-1 (by their key's ending), shown as percentages.
SHARE_SUFFIXES = ("share", "rate", "minimum", "limit")
HIDDEN_EVIDENCE = ("summary", "basis")  # shown in the item's label and caption
URL = re.compile(r"https?://[^\s()<>\[\]`]+")
SHELL_START = re.compile(r"^(curl|export|llmledger|pip|uv)\s|^[A-Z][A-Z0-9_]*=")
MARKDOWN_SPECIALS = re.compile(r"([\\`*_\[\]$~#<>|:])")

Card = tuple[str, str | None]  # a service, and the environment it is scored in (None: all of them)


def rules_version(api: str, token: str | None) -> str:
    """A fingerprint of the alert rules (read through the alerts client's short cache, which its writes clear).

    Four items are scored from the rules, so reads below take it as a cache key: a rule created or changed on the
    Alerts page is seen here at once, not after this module's own TTL."""
    try:
        rules = alerts_client.rules(api, token)
    except client.ApiError:
        return ""  # an older collector without alerts: the readiness read reports what is wrong
    fields = ("id", "name", "metric", "window", "op", "threshold", "filters", "enabled")
    shown = [{name: rule.get(name) for name in fields} for rule in rules]
    return hashlib.sha256(json.dumps(shown, sort_keys=True, default=str).encode()).hexdigest()


@st.cache_data(ttl=TTL, show_spinner=False, max_entries=200)
def scorecard(
    api: str, token: str | None, service: str, environment: str | None, start: str, end: str, rules: str = ""
) -> dict[str, Any]:
    """The scorecard of `service` (in `environment`, or all of them) over [start, end), as the API sends it
    (`rules`, a `rules_version`, only keys the cache)."""
    params = [("service", service), ("from", start), ("to", end)]
    if environment:
        params.append(("environment", environment))
    return client.request("GET", api, token, READINESS_PATH, params).json()


@st.cache_data(ttl=TTL, show_spinner=False, max_entries=200)
def history(
    api: str, token: str | None, service: str, environment: str | None, days: int, rules: str = ""
) -> pd.DataFrame:
    """The daily score over the last `days` UTC days: columns day (UTC timestamp) and score (`rules` keys the
    cache, as for `scorecard`)."""
    params = [("service", service), ("days", str(days))]
    if environment:
        params.append(("environment", environment))
    body = client.request("GET", api, token, HISTORY_PATH, params).json()
    frame = pd.DataFrame(body["points"], columns=["day", "score"])
    frame["day"] = pd.to_datetime(frame["day"], utc=True, format="ISO8601")
    frame["score"] = pd.to_numeric(frame["score"], errors="coerce").astype("float64")
    return frame


@st.cache_data(ttl=TTL, show_spinner=False, max_entries=100)
def batch_features(api: str, token: str | None, service: str) -> list[str]:
    """The features of `service` its team marked as batch-eligible (they should use the Batch API)."""
    body = client.request("GET", api, token, BATCH_PATH, [("service", service)]).json()
    return [str(name) for name in body["features"]]


def clear() -> None:
    """Forget cached readiness reads (after any write that can change a score)."""
    scorecard.clear()
    history.clear()
    batch_features.clear()


def _answer(response: httpx2.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def save_batch_features(api: str, token: str | None, service: str, features: list[str]) -> list[str]:
    """Replace the service's batch-eligible features (admin token); the list the collector now holds."""
    try:
        answer = _answer(client.request("PUT", api, token, BATCH_PATH, body={"service": service, "features": features}))
    finally:
        clear()
    return [str(name) for name in answer.get("features", features)]


def attest(api: str, token: str | None, service: str, item: str, by: str, link: str, note: str) -> dict[str, Any]:
    """Record that the team did what `item` asks (admin token): who, a link to the proof, a note (left out when
    blank). A refusal is an `ApiError` naming the field (422)."""
    body = {"service": service, "item": item, "by": by, "link": link, **({"note": note} if note else {})}
    try:
        return _answer(client.request("POST", api, token, ATTEST_PATH, body=body))
    finally:
        clear()


def create_rule(api: str, token: str | None, rule: dict[str, Any]) -> int:
    """Create the alert rule an item's fix proposes (through the alerts client, admin token); its id. A refusal is
    an `alerts_client.RuleRejectedError` naming the field."""
    try:
        return alerts_client.create_rule(api, token, rule)
    finally:
        clear()


def cards(chosen: tuple[tuple[str, str], ...], known: list[str]) -> list[Card]:
    """The cards to show: the services chosen in the sidebar (else every known one), once per chosen environment
    (else once, over all environments)."""
    services = [value for name, value in chosen if name == "service"] or known
    environments: list[str | None] = [value for name, value in chosen if name == "environment"] or [None]
    return [(service, environment) for service in dict.fromkeys(services) for environment in environments]


def card_title(card: Card) -> str:
    service, environment = card
    return service if environment is None else f"{service} · {environment}"


def widget_key(card: Card, *parts: str) -> str:
    """A session-state key unique to a card (and an item, and a purpose)."""
    service, environment = card
    return "readiness|" + "|".join((service, environment or "*", *parts))


def history_days(start: datetime, end: datetime) -> int:
    """How many days of score history to draw: the window's, but never fewer than a week (nor more than a year)."""
    days = math.ceil((end - start) / timedelta(days=1))
    return min(MAX_HISTORY_DAYS, max(MIN_HISTORY_DAYS, days))


def band_color(band: str) -> str:
    return BAND_COLORS.get(band, "gray")


def escape(text: Any) -> str:
    """Text from the API, shown literally in Markdown (no `$…$` maths, emphasis or `:directives:`)."""
    return MARKDOWN_SPECIALS.sub(r"\\\1", str(text))


def fact_markdown(text: str) -> str:
    """An evidence value for Markdown: a link when it is a plain http(s) URL (an attestation's proof), else literal."""
    return f"[{escape(text)}]({text})" if URL.fullmatch(text) else escape(text)


def basis(item: dict[str, Any]) -> str:
    """How the item is known: observed (traffic), configuration, or attested (the team's word)."""
    found = (item.get("evidence") or {}).get("basis")
    return str(found) if found else ("attested" if item.get("id") in ATTESTED_ITEMS else "observed")


def item_label(item: dict[str, Any]) -> str:
    """One line per item: status icon, title (an attested pass says so), and the evidence in one line."""
    icon = STATUS_ICONS.get(str(item.get("status")), STATUS_ICONS["unknown"])
    text = str(item.get("title") or item.get("id"))
    title = f"**{escape(text)}**"
    if basis(item) == "attested" and item.get("status") == "pass" and "attested" not in text.lower():
        title += " (attested)"
    if item.get("advice"):
        title += " (advice, not scored)"
    summary = (item.get("evidence") or {}).get("summary")
    return f"{icon} {title} — {escape(summary)}" if summary else f"{icon} {title}"


def rule_condition(rule: dict[str, Any]) -> str:
    """A proposed rule in one line: `error_rate > 0.05 over 1h (service=checkout)`."""
    threshold = rule.get("threshold")
    shown = f"{threshold:g}" if isinstance(threshold, (int, float)) else threshold
    text = f"{rule.get('metric')} {rule.get('op')} {shown} over {rule.get('window')}"
    if rule.get("for"):
        text += f" for {rule['for']}"
    scope = "; ".join(
        f"{name}={values if isinstance(values, str) else ','.join(values)}"
        for name, values in (rule.get("filters") or {}).items()
    )
    return f"{text} ({scope})" if scope else text


def snippet_language(snippet: str) -> str:
    """How to highlight a fix's snippet (the API does not say): shell commands, a TOML table, else Python."""
    text = snippet.lstrip()
    if SHELL_START.match(text):
        return "bash"
    if text.startswith("["):
        return "toml"
    return "python"


def label(key: str) -> str:
    """An evidence key for people: `example_request_ids` → `Example request ids`."""
    return key.replace("_", " ").replace(".", " ").strip().capitalize() or key


def value_text(key: str, value: Any) -> str:
    """One evidence value as text: counts with separators, shares as percentages, yes/no."""
    if value is None:
        return ui.NO_DATA
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if key.lower().endswith(SHARE_SUFFIXES) and 0 <= value <= 1:
            return ui.percent(value)
        return f"{value:,.6g}"
    return str(value)


@dataclass
class Evidence:
    """An item's evidence beyond its summary: facts (label, text), lists (label, values), tables (label, frame)."""

    facts: list[tuple[str, str]] = field(default_factory=list)
    lists: list[tuple[str, list[str]]] = field(default_factory=list)
    tables: list[tuple[str, pd.DataFrame]] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.facts or self.lists or self.tables)


def evidence_parts(evidence: dict[str, Any] | None, prefix: str = "") -> Evidence:
    """Sort the evidence's keys (everything but `summary`) into facts, lists of values and tables of rows."""
    parts = Evidence()
    for key, value in (evidence or {}).items():
        if key in HIDDEN_EVIDENCE and not prefix:
            continue
        name = f"{prefix}{label(key)}"
        if isinstance(value, dict):
            nested = evidence_parts(value, f"{name} — ")
            parts.facts += nested.facts
            parts.lists += nested.lists
            parts.tables += nested.tables
        elif isinstance(value, list) and value and all(isinstance(row, dict) for row in value):
            frame = pd.DataFrame(
                [{label(column): value_text(column, cell) for column, cell in row.items()} for row in value]
            )
            parts.tables.append((name, frame))
        elif isinstance(value, list) and not value:
            parts.facts.append((name, "none"))
        elif isinstance(value, list):
            parts.lists.append((name, [value_text(key, entry) for entry in value]))
        else:
            parts.facts.append((name, value_text(key, value)))
    return parts
