"""Latency: percentiles and time to first token over time by model, the distribution, the slowest calls."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
import streamlit as st

from dashboard.data import client, fetch
from dashboard.parts import charts, filters, ui

PERCENTILES = {"latency_p50_ms": "p50", "latency_p95_ms": "p95", "latency_p99_ms": "p99"}
HISTOGRAMS = {"duration_ms": "Latency", "ttft_ms": "Time to first token"}
SLOWEST = 20


def overall(context: ui.Context) -> tuple[str, pd.DataFrame]:
    """p50, p95 and p99 over time, one series each."""
    frames, bucket = [], "auto"
    for metric, name in PERCENTILES.items():  # "auto" picks one bucket for one window: the series line up
        bucket, frame = client.timeseries(context.api, context.token, context.selection.params(), metric)
        frames.append(frame.assign(group=name))
    return bucket, pd.concat(frames, ignore_index=True)


def slowest(context: ui.Context, limit: int = SLOWEST) -> pd.DataFrame:
    """The slowest calls in the window, with their ids to look them up."""
    rows = client.calls(context.api, context.token, context.selection.params(), limit, order="slowest")["calls"]
    if rows.empty:
        return rows
    return pd.DataFrame(
        {
            "Start (UTC)": pd.to_datetime(rows["start_time"], utc=True, format="ISO8601").dt.strftime(
                "%Y-%m-%d %H:%M:%S"
            ),
            "Latency (ms)": rows["duration_ms"].round(1),
            "TTFT (ms)": rows["ttft_ms"].round(1),
            "Model": rows["request_model"],
            "Service": rows["service"],
            "Status": rows["status"],
            "Attempts": rows["attempts"],
            "Output tokens": rows["output_tokens"],
            "Request id": rows["request_id"],
            "Trace id": rows["trace_id"],
        }
    )


def reads(api: str, token: str | None, selection: filters.Selection) -> Sequence[fetch.Read]:
    """What render asks the API for, to fetch at once."""
    params = selection.params()
    by_model = st.session_state.get("latency_percentile") or "latency_p95_ms"
    measure = st.session_state.get("latency_histogram") or "duration_ms"
    return [
        *(lambda metric=metric: client.timeseries(api, token, params, metric) for metric in PERCENTILES),
        lambda: client.timeseries(api, token, params, by_model, group_by="model"),
        lambda: client.timeseries(api, token, params, "ttft_p95_ms", group_by="model"),
        lambda: client.latency_histogram(api, token, params, measure),
        lambda: client.calls(api, token, params, SLOWEST, order="slowest"),
    ]


def render(context: ui.Context) -> None:
    """Percentile trends, per-model trends, a histogram and the slowest calls."""
    summary = context.summary
    for column, (label, key) in zip(
        st.columns(4),
        [
            ("p50 latency", "latency_p50_ms"),
            ("p95 latency", "latency_p95_ms"),
            ("p99 latency", "latency_p99_ms"),
            ("p95 time to first token", "ttft_p95_ms"),
        ],
        strict=True,
    ):
        column.metric(label, ui.millis(summary[key]), border=True)

    st.subheader("Latency percentiles over time")
    bucket, frame = overall(context)
    charts.show(
        charts.series(frame, y_title="Latency (ms)", value_format=",.0f", group_title="Percentile", bucket=bucket)
    )

    left, right = st.columns(2)
    with left:
        metric = st.segmented_control(
            "Latency by model",
            list(PERCENTILES),
            format_func=PERCENTILES.get,
            default="latency_p95_ms",
            required=True,
            key="latency_percentile",
        )
        bucket, frame = client.timeseries(
            context.api, context.token, context.selection.params(), metric, group_by="model"
        )
        charts.show(
            charts.series(
                charts.label_groups(frame, additive=False),
                y_title=f"{PERCENTILES[metric]} latency (ms)",
                value_format=",.0f",
                bucket=bucket,
                group_title="Model",
            )
        )
    with right:
        st.markdown("**p95 time to first token by model** (streamed calls)")
        bucket, frame = client.timeseries(
            context.api, context.token, context.selection.params(), "ttft_p95_ms", group_by="model"
        )
        frame = frame.dropna(subset=["value"])
        if frame.empty:
            st.info("No streamed calls in this window, so no time to first token.")
        else:
            charts.show(
                charts.series(
                    charts.label_groups(frame, additive=False),
                    y_title="p95 time to first token (ms)",
                    value_format=",.0f",
                    bucket=bucket,
                    group_title="Model",
                )
            )

    st.subheader("Distribution")
    measure = st.segmented_control(
        "Measure",
        list(HISTOGRAMS),
        format_func=HISTOGRAMS.get,
        default="duration_ms",
        required=True,
        key="latency_histogram",
    )
    bins = client.latency_histogram(context.api, context.token, context.selection.params(), measure)
    if bins.empty:
        st.info(f"No {HISTOGRAMS[measure].lower()} measured in this window.")
    else:
        charts.show(charts.histogram(bins, x_title=f"{HISTOGRAMS[measure]} (ms)"))
        st.caption("Equal-width bins up to the 99.9th percentile; slower calls are counted in the last bin.")

    st.subheader("Slowest calls")
    st.dataframe(slowest(context), hide_index=True, width="stretch")
    st.caption("The slowest calls in this window. Times in UTC.")


ui.live(render, reads=reads)
