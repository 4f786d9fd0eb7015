"""Exports: the finance CSV (cost by day or month x team x service x model x feature x provider x billing unit), the
FOCUS 1.2 file (CSV or Parquet) and the raw calls CSV."""

from __future__ import annotations

import shlex
from datetime import UTC, datetime, timedelta

import streamlit as st

from dashboard.data import client, finance_client
from dashboard.parts import filters, ui

RANGES = {"sidebar": "Sidebar time range", "this_month": "This month so far (UTC)", "last_month": "Last month (UTC)"}
PERIODS = {"day": "Day", "month": "Month"}


def export_selection(context: ui.Context, choice: str) -> filters.Selection:
    """The sidebar's filters over the chosen range; calendar months are UTC months."""
    if choice == "sidebar":
        return context.selection
    end = filters.now_rounded()
    month = datetime(end.year, end.month, 1, tzinfo=UTC)
    if choice == "this_month":
        return context.selection.window(month, end)
    return context.selection.window((month - timedelta(days=1)).replace(day=1), month)


def curl(api: str, token: str | None, url: str, file_name: str) -> str:
    """The same export for scripts; the token is named, never printed."""
    auth = '-H "Authorization: Bearer $LLMLEDGER_READ_TOKEN" ' if token else ""
    return f"curl -fsS {auth}{shlex.quote(url)} -o {file_name}"


def download(context: ui.Context, selection: filters.Selection, kind: str, period: str | None, label: str) -> None:
    """One click: the CSV is fetched from the collector when the button is pressed (Streamlit calls `data` then,
    on a thread of its own), so showing the page costs nothing; and the curl line for scripts."""
    api, token, params = context.api, context.token, selection.params()
    stamp = f"{selection.start:%Y%m%d}-{selection.end:%Y%m%d}"
    file_name = f"llmledger-{kind}-{stamp}.csv"
    st.download_button(
        label,
        data=lambda: client.export_csv(api, token, params, kind, period),
        file_name=file_name,
        mime="text/csv",
        icon=":material/download:",
        key=f"download_{kind}",
        on_click="ignore",
    )
    st.code(curl(api, token, client.export_url(api, params, kind, period), file_name), language="bash", wrap_lines=True)


def focus_downloads(context: ui.Context, selection: filters.Selection) -> None:
    """FOCUS 1.2 as CSV or Parquet over the whole UTC days that cover the range (FOCUS charges are per day)."""
    api, token = context.api, context.token
    first, last = finance_client.whole_days(selection.start, selection.end)
    if (last - first).days > finance_client.FOCUS_MAX_DAYS:
        st.info(f"A FOCUS file covers at most {finance_client.FOCUS_MAX_DAYS} days: choose a shorter range.")
        return
    st.caption(f"Whole UTC days {first} to {last} (exclusive); the sidebar's filters do not apply: FOCUS is the bill.")
    for column, (file_format, label) in zip(
        st.columns(2), (("csv", "Download FOCUS CSV"), ("parquet", "Download FOCUS Parquet")), strict=True
    ):
        with column:
            st.download_button(
                label,
                data=lambda file_format=file_format: finance_client.focus_export(api, token, first, last, file_format),
                file_name=f"llmledger-focus-{first}-{last}.{file_format}",
                mime=finance_client.FOCUS_FORMATS[file_format],
                icon=":material/download:",
                key=f"download_focus_{file_format}",
                on_click="ignore",
            )
    url = finance_client.focus_url(api, first, last, "csv")
    st.code(curl(api, token, url, f"llmledger-focus-{first}-{last}.csv"), language="bash", wrap_lines=True)


def render(context: ui.Context) -> None:
    """Choose the range and period, then download or copy the command."""
    choice = st.radio("Range", list(RANGES), format_func=RANGES.get, horizontal=True, key="export_range")
    selection = export_selection(context, choice)
    active = ", ".join(f"{name}={value}" for name, value in selection.filters) or "none"
    st.caption(
        f"From {selection.start:%Y-%m-%d %H:%M} (inclusive) to {selection.end:%Y-%m-%d %H:%M} (exclusive) UTC · "
        f"filters: {active}"
    )

    st.subheader("Finance")
    st.markdown(
        "Cost per period, team, service, model, feature, provider and billing unit, with requests, token totals, "
        "the count of unpriced calls and what the calls were billed on besides tokens (images, characters, audio "
        "seconds, built-in tool calls), in columns after the earlier ones. Costs are exact decimals (USD); cells a "
        "spreadsheet would run as formulas are neutralised."
    )
    period = st.segmented_control(
        "Period", list(PERIODS), format_func=PERIODS.get, default="day", required=True, key="export_period"
    )
    download(context, selection, "finance", period, "Download finance CSV")

    st.subheader("FOCUS 1.2")
    st.markdown(
        "The FinOps Foundation's cost format, which FinOps tools and cloud bills share: one row per day, service, "
        "team, feature, model, provider, billing unit and price version, with every mandatory FOCUS column "
        "(`BilledCost`, `ListCost`, `ChargePeriodStart`, ...) and ours as `x_` columns. Where reconciliation has run, "
        "spend OpenAI billed that no instrumented call made is in `Adjustment` rows, so a month adds up to the bill."
    )
    focus_downloads(context, selection)

    st.subheader("Raw calls")
    st.markdown("Every stored column of every call in the range (oldest first).")
    download(context, selection, "calls", None, "Download calls CSV")


ui.live(render, require_calls=False)
