"""A report's chart: daily cost over the period as an Altair (Vega-Lite) spec, rendered to PNG by vl-convert
(a Rust build of Vega's renderer: no browser, no network)."""

from __future__ import annotations

import altair as alt
import pandas as pd
import vl_convert

from collector.digests.report import Report, money

SCALE = 2  # pixels per CSS pixel: sharp on high-density screens, ~30-60 KB


def chart(report: Report) -> alt.Chart:
    frame = pd.DataFrame(
        {
            "day": [day.isoformat() for day, _cost in report.daily],
            "cost": [float(cost) for _day, cost in report.daily],  # drawing only: the text keeps the exact figures
        }
    )
    return (
        alt.Chart(frame, title=f"{report.digest.name}: daily cost, {report.period.label} (UTC)")
        .mark_bar(color="#1f77b4")
        .encode(
            x=alt.X("day:O", title="Day (UTC)", axis=alt.Axis(labelAngle=-45)),
            y=alt.Y("cost:Q", title="Cost (USD)"),
        )
        .properties(width=max(240, 24 * len(frame)), height=200)
    )


def png(report: Report) -> bytes:
    return vl_convert.vegalite_to_png(chart(report).to_json(), scale=SCALE)


def alt_text(report: Report) -> str:
    """What the image shows, for mail readers that don't load it."""
    peak = max(report.daily, key=lambda item: item[1], default=None)
    where = f"; highest {money(peak[1])} on {peak[0].isoformat()}" if peak and peak[1] else ""
    return f"Daily cost, {report.period.label} (UTC): {money(report.spend)} in all{where}"
