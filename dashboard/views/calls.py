"""Calls: every call, newest first, filterable and paginated, each with its request id and trace id."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard.data import client
from dashboard.parts import ui

STATUSES = {"all": "All", "ok": "OK", "error": "Errors"}
PAGE_SIZES = (50, 100, 250, 500)
# Shown first, in this order; every other llm_calls column follows.
COLUMNS = {
    "start_time": "Start (UTC)",
    "service": "Service",
    "environment": "Environment",
    "team": "Team",
    "feature": "Feature",
    "request_model": "Model",
    "status": "Status",
    "error_type": "Error type",
    "http_status": "HTTP status",
    "duration_ms": "Latency (ms)",
    "ttft_ms": "TTFT (ms)",
    "attempts": "Attempts",
    "input_tokens": "Input tokens",
    "cached_input_tokens": "Cached input tokens",
    "output_tokens": "Output tokens",
    "reasoning_tokens": "Reasoning tokens",
    "cost_usd": "Cost (USD)",
    "reported_by": "Reported by",
    "request_id": "Request id",
    "trace_id": "Trace id",
    "span_id": "Span id",
}


def table(rows: pd.DataFrame) -> pd.DataFrame:
    """Rows as the API sent them, the useful columns first; cost stays the exact decimal string."""
    rows = rows.copy()
    rows["start_time"] = (
        pd.to_datetime(rows["start_time"], utc=True, format="ISO8601").dt.strftime("%Y-%m-%d %H:%M:%S.%f").str[:-3]
    )
    rows["cost_usd"] = rows["cost_usd"].map(ui.cost_cell)
    rows["request_model"] = rows["request_model"].where(rows["request_model"].notna(), rows["response_model"])
    if "also_reported_by" in rows.columns:  # collectors before migration 15 don't send it
        rows["reported_by"] = [
            reported_by(kept, others)
            for kept, others in zip(rows["source_dialect"], rows["also_reported_by"], strict=True)
        ]
    first = [name for name in COLUMNS if name in rows.columns]
    rest = [name for name in rows.columns if name not in COLUMNS]
    return rows[first + rest].rename(columns=COLUMNS)


def reported_by(kept: str, others: str | None) -> str:
    """The instrumentations that reported a call, the one whose report is the row first: "llmledger + otel_genai"."""
    return " + ".join([kept, *(others.split(",") if isinstance(others, str) and others else [])])


def _pages(key: str) -> list[str | None]:
    # Cursors of the pages seen so far; a different filter starts again from the newest call.
    state = st.session_state
    if state.get("calls_key") != key:
        state["calls_key"], state["calls_cursors"] = key, [None]
    return state["calls_cursors"]


def _older(cursor: str) -> None:
    st.session_state["calls_cursors"].append(cursor)


def _newer() -> None:
    st.session_state["calls_cursors"].pop()


def render(context: ui.Context) -> None:
    """A page of calls with buttons to move to older and newer pages."""
    left, middle, right = st.columns([2, 2, 1])
    status = left.segmented_control(
        "Status", list(STATUSES), format_func=STATUSES.get, default="all", required=True, key="calls_status"
    )
    end_user = middle.text_input("End user (hash)", key="calls_end_user", placeholder="Any").strip()
    size = right.selectbox("Calls per page", PAGE_SIZES, index=1, key="calls_page_size")
    params = context.selection.params()
    if status != "all":
        params = (*params, ("status", status))
    if end_user:
        params = (*params, ("end_user", end_user))
    cursors = _pages(f"{context.selection.key}|{status}|{end_user}|{size}")
    page = client.calls(context.api, context.token, params, size, cursors[-1])
    rows, next_cursor = page["calls"], page["next_cursor"]
    if rows.empty:
        st.info("No calls match.")
        return
    st.caption(f"Page {len(cursors)} · {len(rows):,} calls · newest first · times in UTC")
    st.dataframe(table(rows), hide_index=True, width="stretch")
    newer, older, _ = st.columns([1, 1, 4])
    newer.button("← Newer", on_click=_newer, disabled=len(cursors) == 1, key="calls_newer")
    older.button("Older →", on_click=_older, args=(next_cursor,), disabled=next_cursor is None, key="calls_older")


ui.live(render)
