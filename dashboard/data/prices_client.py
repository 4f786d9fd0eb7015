"""The collector's price-list API for the dashboard: which list prices new calls and how old it is, the versions and
unpriced models of a window, and re-pricing a window (a dry run first). Money stays the API's exact decimal strings."""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from dashboard.data import client

PRICES_PATH = "/api/v1/prices"
REPRICE_PATH = "/api/v1/reprice"
TTL = 30  # seconds: a list arrives at most every --prices-update-interval; re-pricing clears this
CHANGES = ("model", "rows_changed", "costs_changed", "old_usd", "new_usd", "difference_usd")


@st.cache_data(ttl=TTL, show_spinner=False, max_entries=50)
def price_list(api: str, token: str | None, start: str, end: str) -> dict[str, Any]:
    """`/api/v1/prices` for the window [start, end): the list in use, versions, unpriced models, what re-pricing
    would look at again."""
    return client.request("GET", api, token, PRICES_PATH, [("from", start), ("to", end)]).json()


def reprice(api: str, token: str | None, start: str, end: str, *, dry_run: bool) -> dict[str, Any]:
    """Price [start, end) again with the list in use (needs the admin token); a dry run changes nothing."""
    params = [("from", start), ("to", end), ("dry_run", "true" if dry_run else "false")]
    answer = client.request("POST", api, token, REPRICE_PATH, params).json()
    if not dry_run:
        st.cache_data.clear()  # every cost of the window may have changed
    return answer


def changes(answer: dict[str, Any]) -> pd.DataFrame:
    """A re-pricing answer's changes per model, as a table."""
    return pd.DataFrame(answer["by_model"], columns=list(CHANGES), dtype="object")
