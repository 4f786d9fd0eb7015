"""Altair charts: UTC time axes, axis titles with units, tooltips and a colour-blind-friendly palette."""

from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st

PALETTE = "tableau10"
MAX_SERIES = 9
NONE_LABEL = "(none)"
OTHER_LABEL = "(other)"
TIME_FORMAT = "%Y-%m-%d %H:%M"


def label_groups(frame: pd.DataFrame, additive: bool = True, keep: int = MAX_SERIES) -> pd.DataFrame:
    """Name the null group and keep the largest groups; the rest become "(other)" (summed only when additive)."""
    frame = frame.copy()
    frame["group"] = frame["group"].map(lambda value: NONE_LABEL if value is None or pd.isna(value) else str(value))
    totals = frame.groupby("group")["value"].sum().sort_values(ascending=False)
    if len(totals) <= keep:
        return frame
    top = set(totals.index[:keep])
    if not additive:
        return frame[frame["group"].isin(top)]
    frame.loc[~frame["group"].isin(top), "group"] = OTHER_LABEL
    return frame.groupby(["time", "group"], as_index=False)["value"].sum()


def _time_x(bucket: str | None) -> alt.X:
    # A UTC scale: Vega-Lite then formats the labels in UTC too, not in the viewer's own time zone.
    label = "%d %b" if bucket == "1d" else "%d %b %H:%M"
    return alt.X("time:T", title="Time (UTC)", scale=alt.Scale(type="utc"), axis=alt.Axis(format=label))


def _with_time_label(frame: pd.DataFrame) -> pd.DataFrame:
    # Tooltips show a label made here, in UTC, whatever the browser's time zone.
    return frame.assign(time_label=frame["time"].dt.strftime(TIME_FORMAT + " UTC"))


def series(
    frame: pd.DataFrame,
    *,
    y_title: str,
    value_format: str = ",.2f",
    mark: str = "line",
    group_title: str | None = None,
    height: int = 260,
    y_domain: tuple[float, float] | None = None,
    axis_format: str | None = None,
    whole_numbers: bool = False,
    bucket: str | None = None,
) -> alt.Chart:
    """A time series (columns time, group, value); stacked when the mark is bar or area and there are groups.

    value_format is for tooltips, axis_format for the y axis; whole_numbers keeps count axes off fractions.
    """
    grouped = group_title is not None
    y = alt.Y(
        "value:Q",
        title=y_title,
        stack="zero" if mark in ("bar", "area") and grouped else None,
        scale=alt.Scale(domain=list(y_domain)) if y_domain else alt.Undefined,
        axis=alt.Axis(format=axis_format or alt.Undefined, tickMinStep=1 if whole_numbers else alt.Undefined),
    )
    tooltip = [alt.Tooltip("time_label:N", title="Bucket start")]
    if grouped:
        tooltip.append(alt.Tooltip("group:N", title=group_title))
    tooltip.append(alt.Tooltip("value:Q", title=y_title, format=value_format))
    base = alt.Chart(_with_time_label(frame))
    if mark == "bar":
        chart = base.mark_bar()
    elif mark == "area":
        chart = base.mark_area(opacity=0.85)
    else:
        chart = base.mark_line(point=alt.OverlayMarkDef(size=20))
    encoding: dict[str, object] = {"x": _time_x(bucket), "y": y, "tooltip": tooltip}
    if grouped:
        encoding["color"] = alt.Color("group:N", title=group_title, scale=alt.Scale(scheme=PALETTE))
    return chart.encode(**encoding).properties(height=height)


def histogram(frame: pd.DataFrame, *, x_title: str, height: int = 260) -> alt.Chart:
    """Bars from bins of from_ms, to_ms, count."""
    return (
        alt.Chart(frame)
        .mark_bar()
        .encode(
            x=alt.X("from_ms:Q", title=x_title, bin="binned"),
            x2="to_ms:Q",
            y=alt.Y("count:Q", title="Calls"),
            tooltip=[
                alt.Tooltip("from_ms:Q", title="From (ms)", format=",.0f"),
                alt.Tooltip("to_ms:Q", title="To (ms)", format=",.0f"),
                alt.Tooltip("count:Q", title="Calls", format=","),
            ],
        )
        .properties(height=height)
    )


def ranking(frame: pd.DataFrame, *, category_title: str, value_title: str, height: int = 260) -> alt.Chart:
    """Horizontal bars (columns group, value, label), largest first."""
    return (
        alt.Chart(frame)
        .mark_bar()
        .encode(
            y=alt.Y("group:N", title=category_title, sort="-x"),
            x=alt.X("value:Q", title=value_title),
            color=alt.Color("group:N", legend=None, scale=alt.Scale(scheme=PALETTE)),
            tooltip=[
                alt.Tooltip("group:N", title=category_title),
                alt.Tooltip("label:N", title=value_title),
            ],
        )
        .properties(height=height)
    )


def show(chart: alt.Chart) -> None:
    """Draw a chart across the container's width."""
    st.altair_chart(chart, width="stretch")
