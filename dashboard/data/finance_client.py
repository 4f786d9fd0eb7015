"""The collector's finance API for the dashboard: the FOCUS 1.2 export and chargeback by team. Money stays the API's
exact decimal strings; pages convert only what they chart."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from urllib.parse import urlencode

import pandas as pd
import streamlit as st

from dashboard.data import client

FOCUS_PATH = "/api/v1/export/focus"
CHARGEBACK_PATH = "/api/v1/chargeback"
FOCUS_MAX_DAYS = 366  # the collector's limit per export
FOCUS_FORMATS = {"csv": "text/csv", "parquet": "application/vnd.apache.parquet"}
ALLOCATIONS = ("apart", "proportional")
TEAM_COLUMNS = ("team", "tracked_usd", "allocated_usd", "cost_usd", "share_pct")


def whole_days(start: datetime, end: datetime) -> tuple[date, date]:
    """The UTC days [first, last) that cover [start, end): FOCUS charges are per whole UTC day."""
    first = start.astimezone(UTC).date()
    last_moment = end.astimezone(UTC)
    last = last_moment.date() + timedelta(days=last_moment.time() != time(0))
    return first, max(last, first + timedelta(days=1))


def focus_query(first: date, last: date, file_format: str) -> list[tuple[str, str]]:
    return [("from", first.isoformat()), ("to", last.isoformat()), ("format", file_format)]


def focus_url(api: str, first: date, last: date, file_format: str) -> str:
    """The full export URL, for scripts."""
    return f"{api}{FOCUS_PATH}?{urlencode(focus_query(first, last, file_format))}"


def focus_export(api: str, token: str | None, first: date, last: date, file_format: str) -> bytes:
    """The FOCUS file for UTC days [first, last). Not cached: fetched only when the button is pressed."""
    return client.request("GET", api, token, FOCUS_PATH, focus_query(first, last, file_format)).content


@dataclass(frozen=True)
class Chargeback:
    """One answer of `/api/v1/chargeback`: the month, how the spread was handled, the total and a row per team."""

    month: str
    allocate: str
    total_usd: str
    teams: pd.DataFrame


@st.cache_data(ttl=client.TTL, show_spinner=False, max_entries=100)
def chargeback(api: str, token: str | None, month: str, allocate: str) -> Chargeback:
    """Cost per team for `month` (YYYY-MM, UTC), unattributed and untracked spend `apart` or `proportional`."""
    body = client.request("GET", api, token, CHARGEBACK_PATH, [("month", month), ("allocate", allocate)]).json()
    teams = pd.DataFrame(body["teams"], columns=list(TEAM_COLUMNS), dtype="object")
    return Chargeback(body["month"], body["allocate"], body["total_usd"], teams)


def chargeback_csv(api: str, token: str | None, month: str, allocate: str) -> bytes:
    """The same report as CSV, fetched when the button is pressed."""
    query = [("month", month), ("allocate", allocate), ("format", "csv")]
    return client.request("GET", api, token, CHARGEBACK_PATH, query).content
