"""The collector's reconciliation API for the dashboard: the pull log, ours against OpenAI's per day or per model,
and pulling now. Money stays the API's exact decimal strings; the page converts only what it charts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd
import streamlit as st

from dashboard.data import client

RUNS_PATH = "/api/v1/reconcile-runs"
COMPARE_PATH = "/api/v1/reconciliation"
PULL_PATH = "/api/v1/reconcile"
TTL = 30  # seconds: pulls happen every few hours, or when someone presses the button (which clears this)
SCOPE_STATUSES = (401, 403)
COMPARED = (
    "our_cost_usd",
    "openai_cost_usd",
    "diff_usd",
    "diff_pct",
    "our_input_tokens",
    "openai_input_tokens",
    "our_output_tokens",
    "openai_output_tokens",
    "our_requests",
    "openai_requests",
    "our_unpriced_requests",
)
UNTRACKED = ("day", "line_item", "model", "model_seen", "kind", "openai_cost_usd", "untracked_usd")


@dataclass(frozen=True)
class Comparison:
    """One answer of `/api/v1/reconciliation`: rows (per day, or per day and model), untracked spend, totals."""

    rows: pd.DataFrame
    untracked: pd.DataFrame
    totals: dict[str, Any]
    last_pulled_at: str | None


@st.cache_data(ttl=TTL, show_spinner=False, max_entries=20)
def status(api: str, token: str | None) -> dict[str, Any]:
    """Whether the collector has an admin key, its schedule, and the latest pulls (newest first)."""
    return client.request("GET", api, token, RUNS_PATH).json()


@st.cache_data(ttl=TTL, show_spinner=False, max_entries=100)
def comparison(api: str, token: str | None, start: str, end: str, by: str = "day") -> Comparison:
    """Ours against OpenAI's for UTC days [start, end), `by` day or model."""
    body = client.request("GET", api, token, COMPARE_PATH, [("from", start), ("to", end), ("by", by)]).json()
    keys = ("day", "model") if by == "model" else ("day",)
    return Comparison(
        rows=pd.DataFrame(body["rows"], columns=[*keys, *COMPARED], dtype="object"),
        untracked=pd.DataFrame(body["untracked"], columns=list(UNTRACKED), dtype="object"),
        totals=body["totals"],
        last_pulled_at=body["last_pulled_at"],
    )


def pull(api: str, token: str | None, start: str, end: str) -> dict[str, Any]:
    """Have the collector pull days [start, end) from OpenAI now (needs the admin token); the run as recorded.

    A pull OpenAI refused is an `ApiError` (502) whose detail is the collector's explanation; either way the read
    caches are cleared so the page shows the new run."""
    try:
        return client.request("POST", api, token, PULL_PATH, [("from", start), ("to", end)]).json()
    finally:
        status.clear()
        comparison.clear()
