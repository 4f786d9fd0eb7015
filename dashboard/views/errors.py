"""Errors & limits: error rate by type and model, SDK retries, and rate-limit headroom over time."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
import streamlit as st

from dashboard.data import client, fetch
from dashboard.parts import charts, filters, ui

HEADROOM = {"ratelimit_headroom_requests_pct": "requests", "ratelimit_headroom_tokens_pct": "tokens"}
RECENT_ERRORS = 50


def error_rate_by_type(context: ui.Context) -> tuple[str, pd.DataFrame]:
    """Each error type's share of all calls per bucket (the stack adds up to the overall error rate)."""
    params = context.selection.params()
    bucket, errors = client.timeseries(context.api, context.token, params, "errors", group_by="error_type")
    _, requests = client.timeseries(context.api, context.token, params, "requests")  # "auto": the same bucket
    totals = requests.set_index("time")["value"]
    errors = errors[errors["value"] > 0].copy()
    errors["value"] = errors["value"] / errors["time"].map(totals).to_numpy()
    return bucket, errors


def recent_errors(context: ui.Context, limit: int = RECENT_ERRORS) -> pd.DataFrame:
    """The latest failed calls with what is needed to chase them with OpenAI support."""
    rows = client.calls(context.api, context.token, (*context.selection.params(), ("status", "error")), limit)["calls"]
    if rows.empty:
        return rows
    return pd.DataFrame(
        {
            "Start (UTC)": pd.to_datetime(rows["start_time"], utc=True, format="ISO8601").dt.strftime(
                "%Y-%m-%d %H:%M:%S"
            ),
            "Error type": rows["error_type"],
            "HTTP status": rows["http_status"],
            "Attempts": rows["attempts"],
            "Model": rows["request_model"],
            "Service": rows["service"],
            "Request id": rows["request_id"],
            "Trace id": rows["trace_id"],
        }
    )


def headroom_low(context: ui.Context, metric: str) -> float | None:
    """The lowest headroom (% of the limit left) seen in the window, None when no call reported limits."""
    _, frame = client.timeseries(context.api, context.token, context.selection.params(), metric)
    values = frame["value"].dropna()
    return None if values.empty else float(values.min())


def reads(api: str, token: str | None, selection: filters.Selection) -> Sequence[fetch.Read]:
    """What render asks the API for, to fetch at once."""
    params = selection.params()
    return [
        lambda: client.timeseries(api, token, params, "errors", group_by="error_type"),
        *(
            lambda metric=metric: client.timeseries(api, token, params, metric)
            for metric in ("requests", "retried_requests", *HEADROOM)
        ),
        *(
            lambda metric=metric: client.timeseries(api, token, params, metric, group_by="model")
            for metric in ("error_rate", "retried_requests", *HEADROOM)
        ),
        lambda: client.calls(api, token, (*params, ("status", "error")), RECENT_ERRORS),
    ]


def render(context: ui.Context) -> None:
    """Error and retry counts, then the charts over time, then the latest failures."""
    summary, params = context.summary, context.selection.params()
    _, retried = client.timeseries(context.api, context.token, params, "retried_requests")
    lowest = {name: headroom_low(context, metric) for metric, name in HEADROOM.items()}
    columns = st.columns(5)
    columns[0].metric("Errors", ui.count(summary["errors"]), border=True)
    columns[1].metric("Error rate", ui.percent(summary["error_rate"]), border=True)
    columns[2].metric(
        "Retried calls",
        ui.count(retried["value"].sum()),
        help="Calls that took more than one HTTP attempt.",
        border=True,
    )
    for column, name in zip(columns[3:], HEADROOM.values(), strict=True):
        value = lowest[name]
        column.metric(
            f"{name.capitalize()} headroom",
            ui.NO_DATA if value is None else f"{value:.1f}%",
            help=f"The lowest remaining/limit of {name} in the x-ratelimit headers of any call in the window.",
            border=True,
        )

    left, right = st.columns(2)
    with left:
        bucket, frame = error_rate_by_type(context)
        st.markdown(f"**Error rate by error type** ({bucket} buckets)")
        if frame.empty:
            st.success("No errors in this window.")
        else:
            charts.show(
                charts.series(
                    charts.label_groups(frame),
                    y_title="Share of calls failing",
                    value_format=".2%",
                    axis_format=".1%",
                    bucket=bucket,
                    mark="bar",
                    group_title="Error type",
                )
            )
    with right:
        bucket, frame = client.timeseries(context.api, context.token, params, "error_rate", group_by="model")
        st.markdown(f"**Error rate by model** ({bucket} buckets)")
        charts.show(
            charts.series(
                charts.label_groups(frame, additive=False),
                y_title="Error rate (% of calls)",
                value_format=".2%",
                axis_format=".1%",
                bucket=bucket,
                group_title="Model",
            )
        )

    bucket, frame = client.timeseries(context.api, context.token, params, "retried_requests", group_by="model")
    st.subheader(f"Retried calls (attempts > 1, {bucket} buckets)")
    charts.show(
        charts.series(
            charts.label_groups(frame),
            y_title="Retried calls (calls)",
            value_format=",",
            whole_numbers=True,
            bucket=bucket,
            mark="bar",
            group_title="Model",
        )
    )

    st.subheader("Rate-limit headroom")
    for column, (metric, name) in zip(st.columns(2), HEADROOM.items(), strict=True):
        bucket, frame = client.timeseries(context.api, context.token, params, metric, group_by="model")
        frame = frame.dropna(subset=["value"])
        with column:
            st.markdown(f"**Remaining {name} (% of limit, lowest per bucket)**")
            if frame.empty:
                st.info(f"No call in this window reported x-ratelimit-*-{name} headers.")
                continue
            charts.show(
                charts.series(
                    charts.label_groups(frame, additive=False),
                    y_title=f"Remaining {name} (% of limit)",
                    value_format=".1f",
                    bucket=bucket,
                    group_title="Model",
                    y_domain=(0, 100),
                )
            )

    st.subheader("Latest errors")
    st.dataframe(recent_errors(context), hide_index=True, width="stretch")


ui.live(render, reads=reads)
