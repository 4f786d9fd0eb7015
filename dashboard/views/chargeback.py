"""Chargeback: a UTC month's cost by team, with the spend no team accounts for (calls without a team, and spend
OpenAI billed that no instrumented call made) shown apart or allocated in proportion to each team's tracked spend."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pandas as pd
import streamlit as st

from dashboard.data import client, finance_client
from dashboard.data.client import ApiError
from dashboard.parts import charts, filters, ui

MONTHS_SHOWN = 13
ALLOCATIONS = {
    "apart": "Shown apart",
    "proportional": "Allocated in proportion to tracked spend",
}
TOTAL = "Total"


def months(today: date, count: int = MONTHS_SHOWN) -> list[str]:
    """The last `count` UTC months, newest first, as YYYY-MM."""
    year, month = today.year, today.month
    shown = []
    for _ in range(count):
        shown.append(f"{year:04d}-{month:02d}")
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
    return shown


def table(report: finance_client.Chargeback) -> pd.DataFrame:
    """The API's rows (exact decimal strings) and a total row, whose cost is the month's total."""
    teams = report.teams
    sums = {
        name: sum((Decimal(value) for value in teams[name]), Decimal(0)) for name in ("tracked_usd", "allocated_usd")
    }
    shown = pd.DataFrame(
        {
            "Team": teams["team"],
            "Tracked (USD)": teams["tracked_usd"],
            "Unattributed + untracked (USD)": teams["allocated_usd"],
            "Cost (USD)": teams["cost_usd"],
            "Share": teams["share_pct"].map(lambda value: ui.NO_DATA if value is None else f"{value}%"),
        }
    )
    total = {
        "Team": TOTAL,
        "Tracked (USD)": format(sums["tracked_usd"], "f"),
        "Unattributed + untracked (USD)": format(sums["allocated_usd"], "f"),
        "Cost (USD)": report.total_usd,
        "Share": "100.00%" if Decimal(report.total_usd) else ui.NO_DATA,
    }
    return pd.concat([shown, pd.DataFrame([total])], ignore_index=True)


def chart(report: finance_client.Chargeback) -> None:
    teams = report.teams
    frame = pd.DataFrame(
        {
            "group": teams["team"],
            "value": teams["cost_usd"].map(float),
            "label": teams["cost_usd"].map(ui.usd),
        }
    )
    charts.show(
        charts.ranking(frame, category_title="Team", value_title="Cost (USD)", height=max(120, 32 * len(frame)))
    )


def render() -> None:
    api, token = client.api_url(), client.read_token()
    st.header("Chargeback")
    st.caption(
        "Cost per team for a UTC month, team by team the same as the FOCUS export (Exports page). The sidebar's "
        "filters do not apply: a chargeback divides the whole bill."
    )
    choices = months(filters.now_utc().date())
    month_column, allocate_column = st.columns([1, 3])
    # Chargeback is usually run on a closed month: the one before this one, by default.
    month = month_column.selectbox("Month (UTC)", choices, index=1, key="chargeback_month")
    allocate = allocate_column.radio(
        "Unattributed and untracked spend",
        list(ALLOCATIONS),
        format_func=ALLOCATIONS.get,
        horizontal=True,
        key="chargeback_allocate",
    )
    try:
        report = finance_client.chargeback(api, token, month, allocate)
    except ApiError as error:
        ui.show_error(error)
        return
    total = ui.decimal(report.total_usd)
    st.metric(f"Total for {report.month}", ui.usd(total), border=True)
    if report.teams.empty:
        st.info(f"No cost in {report.month}: no priced call, and no spend from OpenAI's bill on reconciled days.")
        return
    st.caption(
        "(unattributed): calls without a team label. (untracked): what OpenAI billed on the days reconciliation "
        "pulled that no instrumented call accounts for. With reconciliation run on every day of the month, the "
        "total is the month's bill."
        if allocate == "apart"
        else "Each team's share of the unattributed and untracked spend follows its tracked spend (to the "
        "nano-dollar, so the rows still add up to the total)."
    )
    chart(report)
    st.dataframe(table(report), hide_index=True, width="stretch")
    st.download_button(
        "Download chargeback CSV",
        data=lambda: finance_client.chargeback_csv(api, token, month, allocate),
        file_name=f"llmledger-chargeback-{report.month}-{allocate}.csv",
        mime="text/csv",
        icon=":material/download:",
        key="chargeback_download",
        on_click="ignore",
    )


render()
