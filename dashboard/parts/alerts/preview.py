"""A draft rule's last 7 days: its value hour by hour (per group: small multiples of the top groups), the thresholds or
the anomaly band around it, markers where it would have fired, and the group cap with what it left out."""

from __future__ import annotations

from typing import Any

import altair as alt
import pandas as pd
import streamlit as st

PANELS = 6  # groups drawn as small multiples; the rest are listed in the table only
CRITICAL, WARNING, BAND = "#d62728", "#ff9900", "#9ecae1"
COLUMNS = ["group", "time", "value", "lower", "upper", "requests", "state", "severity", "fired"]


def series(result: dict[str, Any]) -> list[tuple[str, list[dict[str, Any]], list[str]]]:
    """(group, points, fired_at) per group the preview answered; one with group '' for a rule without group_by."""
    if "groups" in result:
        return [(str(item["group"]), item["points"], item["fired_at"]) for item in result["groups"]]
    return [("", result["points"], result["fired_at"])]


def frame(result: dict[str, Any], groups: int = PANELS) -> pd.DataFrame:
    """The first `groups` groups' points (the API sends the top groups first) as one frame, `fired` marking the hours
    the rule would have fired."""
    rows = []
    for group, points, fired_at in series(result)[:groups]:
        fired = set(fired_at)
        rows += [{**point, "group": group, "fired": point["time"] in fired} for point in points]
    found = pd.DataFrame(rows, columns=COLUMNS)
    found["time"] = pd.to_datetime(found["time"], utc=True, format="ISO8601")
    for name in ("value", "lower", "upper"):
        found[name] = pd.to_numeric(found[name], errors="coerce").astype("float64")
    return found


def chart(points: pd.DataFrame, body: dict[str, Any], grouped: bool) -> alt.TopLevelMixin:
    """The value line, over the anomaly band (an area from lower to upper) or under the threshold rules, with a marker
    where the rule would have fired; one panel per group when grouped (each with its own scale)."""
    metric = str(body.get("metric") or "requests")
    x = alt.X("time:T", title="Time (UTC)")
    tooltip = [alt.Tooltip("time:T", title="Time (UTC)"), "value:Q", "requests:Q", "state:N", "severity:N"]
    layers: list[alt.Chart] = []
    if body.get("kind") == "anomaly":
        band = alt.Chart().mark_area(opacity=0.35, color=BAND)
        layers.append(band.encode(x=x, y=alt.Y("lower:Q", title=metric), y2="upper:Q"))
    layers.append(alt.Chart().mark_line().encode(x=x, y=alt.Y("value:Q", title=metric), tooltip=tooltip))
    for name, colour in (("threshold", CRITICAL), ("warning_threshold", WARNING)):
        if body.get("kind", "threshold") == "threshold" and isinstance(body.get(name), int | float):
            once = alt.Chart().transform_aggregate(calls="count()")  # one rule, not one per hour
            layers.append(once.mark_rule(strokeDash=[4, 4], color=colour).encode(y=alt.datum(body[name])))
    fired = alt.Chart().transform_filter(alt.datum.fired).mark_point(color=CRITICAL, size=80, filled=True)
    layers.append(fired.encode(x=x, y="value:Q", tooltip=tooltip))
    drawn = alt.layer(*layers, data=points)
    if not grouped:
        return drawn
    panels = drawn.properties(width=340, height=150)
    title = str(body.get("group_by"))
    return panels.facet(facet=alt.Facet("group:N", title=title), columns=2).resolve_scale(y="independent")


def caption(body: dict[str, Any], result: dict[str, Any]) -> str:
    """How many times it would have fired, and for a grouped rule which groups were previewed and left out."""
    fired = result["fired_at"]
    text = f"**Preview of {body.get('name') or 'the draft'}** over the last 7 days (hourly): " + (
        f"would have fired {len(fired)} time(s)." if fired else "would not have fired."
    )
    if "groups" not in result:
        return text
    shown, left_out = len(result["groups"]), int(result.get("groups_left_out") or 0)
    text += f" {shown} group(s) by {result['group_by']} previewed (cap: {result['max_groups']})"
    text += f"; {left_out} more left out by the cap." if left_out else "; none left out."
    if shown > PANELS:
        text += f" The chart shows the top {PANELS}; the table lists them all."
    return text


def fired_table(result: dict[str, Any]) -> pd.DataFrame:
    """Per group: how many times it would have fired, and when first and last."""
    rows = [{"Group": group, "Would have fired": len(fired), "First (UTC)": fired[0][:16] if fired else "",
             "Last (UTC)": fired[-1][:16] if fired else ""} for group, _points, fired in series(result)]  # fmt: skip
    return pd.DataFrame(rows)


def show_preview(preview: tuple[dict[str, Any], dict[str, Any]] | None) -> None:
    """The draft's preview (its body and the collector's answer), if one was asked for."""
    if preview is None:
        return
    body, result = preview
    st.markdown(caption(body, result))
    grouped = "groups" in result
    points = frame(result)
    if points.empty or points["value"].isna().all():
        st.caption("No calls matched in the last 7 days.")
        return
    st.altair_chart(chart(points, body, grouped), width="stretch" if not grouped else "content")
    if grouped:
        st.dataframe(fired_table(result), hide_index=True, width="stretch")
