"""Spend: cost over time stacked by a chosen dimension (billing unit and provider among them), top spenders,
cached-input savings, unpriced calls, calls priced on a fallback and calls whose tokens contradict themselves."""

from __future__ import annotations

from decimal import Decimal

import pandas as pd
import streamlit as st

from dashboard.data import client
from dashboard.parts import charts, ui

DIMENSIONS = {
    "model": "Model",
    "service": "Service",
    "team": "Team",
    "feature": "Feature",
    "end_user": "User",
    "provider": "Provider",
    "billing_unit": "Billing unit",
}
TOP = 20


def spenders_table(groups: pd.DataFrame, label: str) -> pd.DataFrame:
    """Top spenders as the API counted them; costs stay the API's exact decimal strings."""
    return pd.DataFrame(
        {
            label: groups["group"].map(lambda value: charts.NONE_LABEL if value is None else str(value)),
            "Cost (USD)": [
                ui.cost_cell(cost, requests, unpriced)
                for cost, requests, unpriced in zip(
                    groups["cost_usd"], groups["requests"], groups["unpriced_requests"], strict=True
                )
            ],
            "Calls": groups["requests"].astype("int64"),
            "Unpriced calls": groups["unpriced_requests"].astype("int64"),
            "Input tokens": groups["input_tokens"].astype("int64"),
            "Cached input tokens": groups["cached_input_tokens"].astype("int64"),
            "Output tokens": groups["output_tokens"].astype("int64"),
            "Cached-input savings (USD)": groups["cached_input_savings_usd"].astype("str"),
        }
    )


def render(context: ui.Context) -> None:
    """Totals, the stacked cost chart and the top-spender table for the chosen dimension."""
    summary = context.summary
    by_model = client.breakdown(context.api, context.token, context.selection.params(), "model", 1000)
    savings = sum(
        (ui.decimal(value) or Decimal(0) for value in by_model.get("cached_input_savings_usd", [])), Decimal(0)
    )
    total, unpriced, saved = st.columns(3)
    total.metric("Cost (priced calls)", ui.usd(summary["cost_usd"]), border=True)
    unpriced.metric(
        "Unpriced calls",
        ui.count(summary["unpriced_requests"]),
        help="Calls the price book can't price (unknown model): not in the cost, never shown as $0.",
        border=True,
    )
    saved.metric(
        "Cached-input savings",
        ui.usd(savings),
        help="Cached input tokens times (input rate minus cached input rate), from the collector's price book.",
        border=True,
    )
    if summary["unpriced_requests"]:
        st.warning(
            f"{ui.count(summary['unpriced_requests'])} of {ui.count(summary['requests'])} calls are unpriced: "
            "their model is not in the price book, so the cost above leaves them out. Add the model to the "
            "collector's price overrides to price them."
        )
    if fallback := summary.get("tier_fallback_requests"):
        st.info(
            f"{ui.count(fallback)} calls were priced at standard rates: the price list has no rate for the service "
            "tier or Batch API price they used (or not yet on that date). Their rows say price_tier_fallback = true; "
            "a negotiated rate in the collector's price overrides replaces the guess."
        )

    if provider_fallback := summary.get("provider_fallback_requests"):
        st.info(
            f"{ui.count(provider_fallback)} calls were priced at OpenAI's list price: their provider (Azure OpenAI, "
            "or a gateway the URL doesn't name) has no list of its own for the model. Their rows say "
            "price_provider_fallback = true."
        )
    if flagged := summary.get("sanity_flagged_requests"):
        st.warning(
            f"{ui.count(flagged)} calls report tokens that contradict themselves (cached above input, reasoning above "
            "output, a total that isn't the sum of its parts). They are stored as reported, never fixed: see their "
            "sanity_flags on the Calls page or in the CSV export."
        )

    dimension = st.segmented_control(
        "Stack cost by", list(DIMENSIONS), format_func=DIMENSIONS.get, default="model", required=True, key="spend_by"
    )
    label = DIMENSIONS[dimension]
    bucket, frame = client.timeseries(
        context.api, context.token, context.selection.params(), "cost_usd", group_by=dimension
    )
    st.subheader(f"Cost over time by {label.lower()} ({bucket} buckets)")
    charts.show(
        charts.series(
            charts.label_groups(frame),
            y_title="Cost (USD)",
            value_format="$,.6f",
            axis_format="$,.6~f",
            mark="bar",
            group_title=label,
            bucket=bucket,
        )
    )

    st.subheader(f"Top spenders by {label.lower()}")
    groups = client.breakdown(context.api, context.token, context.selection.params(), dimension, TOP)
    if groups.empty:
        st.info("No calls in this window.")
        return
    table = spenders_table(groups, label)
    ranked = pd.DataFrame(
        {
            "group": table[label],
            "value": groups["cost_usd"].map(lambda value: float(ui.decimal(value) or 0)),
            "label": groups["cost_usd"].map(ui.usd),
        }
    )
    charts.show(
        charts.ranking(ranked, category_title=label, value_title="Cost (USD)", height=max(160, 24 * len(ranked)))
    )
    st.dataframe(table, hide_index=True, width="stretch")
    st.caption(
        f'Top {TOP} by cost. Costs are exact to the nano-dollar as stored; "unpriced" means no call in that '
        "row could be priced."
    )


ui.live(render)
