"""A chart of any SQL result, chosen from its column types: the first text or time column across, the first numeric
column up; a line over time, bars over categories, one colour per value of a second text column if there is one.
No numeric column, or nothing to put across, means no chart."""

from __future__ import annotations

from dataclasses import dataclass

import altair as alt
import pandas as pd

from dashboard.data.sql_client import is_numeric, is_temporal, is_text
from dashboard.parts.charts import PALETTE

MAX_BARS = 100  # more categories than this are unreadable as bars: the first ones, as the query ordered them


@dataclass(frozen=True)
class Axes:
    x: str
    y: str
    mark: str  # "line" over time, "bar" over categories
    color: str | None


def axes(types: dict[str, str]) -> Axes | None:
    """Which columns to chart, from DuckDB's type of each (in the result's order); None when nothing fits."""
    across = next((name for name, kind in types.items() if is_text(kind) or is_temporal(kind)), None)
    up = next((name for name, kind in types.items() if is_numeric(kind)), None)
    if across is None or up is None:
        return None
    color = next((name for name, kind in types.items() if is_text(kind) and name != across), None)
    return Axes(across, up, "line" if is_temporal(types[across]) else "bar", color)


def chart(rows: pd.DataFrame, chosen: Axes, height: int = 300) -> alt.Chart:
    """The chart of `rows` on `chosen` axes (values converted here: decimals arrive as exact strings)."""
    frame = pd.DataFrame({"y": pd.to_numeric(rows[chosen.y], errors="coerce").astype("float64")})
    frame["color"] = rows[chosen.color].astype("string").fillna("(null)") if chosen.color else ""
    if chosen.mark == "line":
        frame["x"] = pd.to_datetime(rows[chosen.x], utc=True, format="ISO8601")
        x = alt.X("x:T", title=f"{chosen.x} (UTC)", scale=alt.Scale(type="utc"))
        tooltip = [alt.Tooltip("x:T", title=chosen.x, format="%Y-%m-%d %H:%M", formatType="utc")]
        base = alt.Chart(frame.sort_values("x")).mark_line(point=True)
    else:
        frame["x"] = rows[chosen.x].astype("string").fillna("(null)")
        frame = frame.head(MAX_BARS)
        x = alt.X("x:N", title=chosen.x, sort=None)
        tooltip = [alt.Tooltip("x:N", title=chosen.x)]
        base = alt.Chart(frame).mark_bar()
    tooltip.append(alt.Tooltip("y:Q", title=chosen.y, format=",.6~g"))
    encoding: dict[str, object] = {"x": x, "y": alt.Y("y:Q", title=chosen.y), "tooltip": tooltip}
    if chosen.color:
        encoding["color"] = alt.Color("color:N", title=chosen.color, scale=alt.Scale(scheme=PALETTE))
        tooltip.insert(1, alt.Tooltip("color:N", title=chosen.color))
    return base.encode(**encoding).properties(height=height)
