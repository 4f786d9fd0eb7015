"""The shared sidebar: time range, group filters and auto-refresh, all kept in the URL so a view can be shared."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta

import streamlit as st

from dashboard.data import client, fetch

# Preset (shown as is, and its value in the URL) → label and length; "Custom" uses the date pickers.
PRESETS: dict[str, tuple[str, timedelta | None]] = {
    "1h": ("Last 1 hour", timedelta(hours=1)),
    "24h": ("Last 24 hours", timedelta(hours=24)),
    "7d": ("Last 7 days", timedelta(days=7)),
    "30d": ("Last 30 days", timedelta(days=30)),
    "90d": ("Last 90 days", timedelta(days=90)),
    "Custom": ("Custom dates", None),
}
DEFAULT_PRESET = "24h"
REFRESH: dict[str, int | None] = {"Off": None, "10s": 10, "1m": 60}
# Sidebar multiselects: API filter name (also the URL parameter) → label.
GROUP_FILTERS: dict[str, str] = {
    "service": "Service",
    "environment": "Environment",
    "team": "Team",
    "model": "Model",
    "feature": "Feature",
}
OPTIONS_LOOKBACK = timedelta(days=90)


@dataclass(frozen=True)
class Selection:
    """A concrete UTC window [start, end) plus any-of filters, resolved from the sidebar at one moment."""

    start: datetime
    end: datetime
    filters: tuple[tuple[str, str], ...] = ()
    label: str = ""
    # What the user chose (preset or dates plus filters), stable while a relative window slides forward.
    key: str = ""

    def params(self) -> tuple[tuple[str, str], ...]:
        """Query parameters for the API: from, to and the filters (repeated names mean any of)."""
        return (("from", iso(self.start)), ("to", iso(self.end)), *self.filters)

    def window(self, start: datetime, end: datetime) -> Selection:
        """The same filters over another window."""
        return replace(self, start=start, end=end)

    def previous(self) -> Selection:
        """The window of the same length just before this one (for deltas)."""
        length = self.end - self.start
        return self.window(self.start - length, self.start)


def iso(moment: datetime) -> str:
    """RFC 3339 in UTC, to the second, with a Z."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def now_utc() -> datetime:
    """The current time in UTC."""
    return datetime.now(UTC)


def now_rounded(now: datetime | None = None) -> datetime:
    """Now, rounded up to the refresh interval (a minute when off): windows and cache keys hold between refreshes."""
    seconds = refresh_seconds() or 60
    stamp = math.ceil((now or now_utc()).timestamp() / seconds) * seconds
    return datetime.fromtimestamp(stamp, UTC)


def utc_day_of(end: datetime) -> datetime:
    """UTC midnight starting the day that a window ending at `end` (open) lies in: the day of the instant just before
    `end`. A page's `now` is rounded up (now_rounded), so in a day's last minute it is the next midnight, and the
    day is still today."""
    last = end.astimezone(UTC) - timedelta(microseconds=1)
    return datetime(last.year, last.month, last.day, tzinfo=UTC)


def refresh_seconds() -> int | None:
    """The auto-refresh interval chosen in the sidebar, or None when off."""
    return REFRESH.get(st.session_state.get("refresh") or "Off")


def default_dates(today: date | None = None) -> tuple[date, date]:
    """The custom range offered first: the last seven UTC days, today included."""
    today = today or now_utc().date()
    return today - timedelta(days=6), today


def current(now: datetime | None = None) -> Selection:
    """Resolve the sidebar's choices into a concrete window, freshly on every (fragment) run."""
    state = st.session_state
    preset = state.get("range") or DEFAULT_PRESET
    filters = tuple((name, value) for name in GROUP_FILTERS for value in state.get(name) or ())
    label, length = PRESETS.get(preset, PRESETS[DEFAULT_PRESET])
    if length is None:
        first, last = _dates(state.get("dates"))
        start = datetime(first.year, first.month, first.day, tzinfo=UTC)
        end = datetime(last.year, last.month, last.day, tzinfo=UTC) + timedelta(days=1)
        label = f"{first.isoformat()} to {last.isoformat()} (UTC days)"
        key = f"{first}/{last}"
    else:
        end = now_rounded(now)
        start = end - length
        key = preset
    return Selection(start, end, filters, label, f"{key}|{filters}")


def show_window_in_url(selection: Selection) -> None:
    """Mirror the resolved window as from/to in the URL, so a reader (or a script) sees the exact UTC window.

    They are informational: on load the time range widgets decide, so a shared "last 24 hours" link stays relative.
    """
    window = {"from": iso(selection.start), "to": iso(selection.end)}
    if {key: st.query_params.get(key) for key in window} != window:
        st.query_params.update(window)


def _dates(value: object) -> tuple[date, date]:
    # A range picker reports one date while the user is still choosing the second.
    if isinstance(value, (tuple, list)) and value:
        return value[0], value[-1]
    if isinstance(value, date):
        return value, value
    return default_dates()


def sidebar() -> None:
    """Render the shared filters in the sidebar; every widget is bound to a URL query parameter."""
    api, token = client.api_url(), client.read_token()
    with st.sidebar:
        st.header("Filters")
        # Bound widgets put their option text in the URL, so the options are short texts, not labels.
        st.segmented_control(
            "Time range (last …)",
            list(PRESETS),
            default=DEFAULT_PRESET,
            required=True,
            key="range",
            bind="query-params",
        )
        if (st.session_state.get("range") or DEFAULT_PRESET) == "Custom":
            st.date_input("Dates (UTC)", value=default_dates(), key="dates", bind="query-params")
        since = (now_utc() - OPTIONS_LOOKBACK).date().isoformat()
        fetch.concurrently([lambda name=name: client.group_values(api, token, name, since) for name in GROUP_FILTERS])
        for name, label in GROUP_FILTERS.items():
            try:
                options = client.group_values(api, token, name, since)
            except client.ApiError:
                options = []  # the page itself reports an unreachable collector
            chosen = [value for value in st.session_state.get(name) or () if value not in options]
            st.multiselect(
                label,
                [*options, *chosen],
                key=name,
                placeholder="All",
                accept_new_options=True,
                bind="query-params",
            )
        st.segmented_control(
            "Auto-refresh",
            list(REFRESH),
            default="Off",
            required=True,
            key="refresh",
            bind="query-params",
        )
        st.caption(f"All times are UTC. Reading from the collector at `{api}`.")
