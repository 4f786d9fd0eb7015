"""Overview: spend today and this month, traffic, errors and latency, each against the period before."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

import streamlit as st

from dashboard.data import alerts_client, client, fetch
from dashboard.data.client import ApiError
from dashboard.parts import charts, filters, ui

SPEND_FIELDS = ("cost_usd", "unpriced_requests")  # what a spend figure reads of its windows' summaries


def calendar_windows(now: datetime) -> dict[str, tuple[datetime, datetime, datetime, datetime]]:
    """UTC day and month so far, each with the same stretch of the period before (start, end, prev start, prev end)."""
    today = filters.utc_day_of(now)
    month = today.replace(day=1)
    last_month = (month - timedelta(days=1)).replace(day=1)
    return {
        "today": (today, now, today - timedelta(days=1), now - timedelta(days=1)),
        "month": (month, now, last_month, min(last_month + (now - month), month)),
    }


def span(length: timedelta) -> str:
    """A window's length, short: 24h, 7d."""
    hours = round(length.total_seconds() / 3600)
    return f"{hours}h" if hours < 48 else f"{round(hours / 24)}d"


def spend_metric(context: ui.Context, label: str, window: tuple[datetime, ...], versus: str) -> None:
    """One spend figure with its change against the same stretch of the previous day or month."""
    start, end, previous_start, previous_end = window
    api, token, selection = context.api, context.token, context.selection
    now = client.summary(api, token, selection.window(start, end).params(), SPEND_FIELDS)
    before = client.summary(api, token, selection.window(previous_start, previous_end).params(), SPEND_FIELDS)
    cost, previous = ui.decimal(now["cost_usd"]), ui.decimal(before["cost_usd"])
    unpriced = now["unpriced_requests"]
    st.metric(
        label,
        ui.usd(cost),
        ui.signed_usd(cost - previous) if cost is not None and previous is not None else None,
        delta_color="inverse",
        delta_description=versus,
        help=f"{ui.count(unpriced)} unpriced calls are not in this figure." if unpriced else None,
        border=True,
    )


def alert_banner(context: ui.Context) -> None:
    """Firing alerts first of all; then each enabled budget rule's spend so far and forecast against its limit."""
    try:
        rules = alerts_client.rules(context.api, context.token)
    except ApiError:
        return  # an older collector without alerts: the rest of the page still works
    firing = [rule for rule in rules if rule["state"] == "firing" and rule["enabled"]]
    if firing:
        names = ", ".join(f"**{rule['name']}**" for rule in firing)
        st.error(f"Firing ({len(firing)}): {names} — see Alerts.", icon=":material/notifications_active:")
    enabled = [rule for rule in rules if rule["enabled"]]
    for budget in alerts_client.budgets(context.api, context.token, enabled, filters.now_rounded()):
        for column, (fill, text) in zip(st.columns(2), budget.bars(), strict=True):
            column.progress(fill, text=f"Budget {text}")


TRENDS = [
    ("cost_usd", "Cost (USD)", "$,.6f", "$,.6~f"),
    ("requests", "Calls", ",", ",.0f"),
    ("error_rate", "Error rate (%)", ".2%", ".1%"),
    ("latency_p95_ms", "p95 latency (ms)", ",.0f", ",.0f"),
]


def reads(api: str, token: str | None, selection: filters.Selection) -> Sequence[fetch.Read]:
    """What render asks the API for, to fetch at once: the alert rules, the spend windows, the window before the
    sidebar's and the trends."""
    windows = calendar_windows(filters.now_rounded())
    spends = [(start, end) for start, end, *_ in windows.values()]
    spends += [(previous_start, previous_end) for _, _, previous_start, previous_end in windows.values()]
    return [
        lambda: alerts_client.rules(api, token),
        *(
            lambda start=start, end=end: client.summary(api, token, selection.window(start, end).params(), SPEND_FIELDS)
            for start, end in spends
        ),
        lambda: client.summary(api, token, selection.previous().params()),
        *(lambda metric=metric: client.timeseries(api, token, selection.params(), metric) for metric, *_ in TRENDS),
    ]


def render(context: ui.Context) -> None:
    """Key numbers for the sidebar's window against the window before it, then small trends."""
    alert_banner(context)
    now = filters.now_rounded()
    windows = calendar_windows(now)
    left, right, unpriced = st.columns(3)
    with left:
        spend_metric(context, "Spend today (UTC)", windows["today"], "vs. yesterday by this time")
    with right:
        spend_metric(context, "Spend this month (UTC)", windows["month"], "vs. last month by this day")
    with unpriced:
        st.metric(
            "Unpriced calls",
            ui.count(context.summary["unpriced_requests"]),
            help="Calls whose model the price book can't price: counted here, never as $0.",
            border=True,
        )

    summary = context.summary
    before = client.summary(context.api, context.token, context.selection.previous().params())
    versus = f"vs. prior {span(context.selection.end - context.selection.start)}"
    columns = st.columns(4)
    figures = [
        ("Requests", ui.count(summary["requests"]), ui.change(summary["requests"], before["requests"]), "normal"),
        (
            "Error rate",
            ui.percent(summary["error_rate"]),
            ui.change(summary["error_rate"], before["error_rate"], " pp", scale=100, digits=2),
            "inverse",
        ),
        (
            "p95 latency",
            ui.millis(summary["latency_p95_ms"]),
            ui.change(summary["latency_p95_ms"], before["latency_p95_ms"], " ms"),
            "inverse",
        ),
        (
            "p95 time to first token",
            ui.millis(summary["ttft_p95_ms"]),
            ui.change(summary["ttft_p95_ms"], before["ttft_p95_ms"], " ms"),
            "inverse",
        ),
    ]
    for column, (label, value, delta, colour) in zip(columns, figures, strict=True):
        column.metric(label, value, delta, delta_color=colour, delta_description=versus, border=True)

    for column, (metric, title, tip_format, axis_format) in zip(st.columns(4), TRENDS, strict=True):
        bucket, frame = client.timeseries(context.api, context.token, context.selection.params(), metric)
        chart = charts.series(
            frame,
            y_title=title,
            value_format=tip_format,
            axis_format=axis_format,
            whole_numbers=metric == "requests",
            bucket=bucket,
            height=160,
        )
        with column:
            charts.show(chart)


ui.live(render, reads=reads)
