"""Spend: cost over time stacked by a chosen dimension (billing unit and provider among them), top spenders, what
the spend is billed on (calls, cost and quantity per billing unit), cached-input savings, unpriced calls, calls
priced on a fallback and calls whose tokens contradict themselves; the price list in use, the models with no price,
and re-pricing offered (a dry run first) when a newer list would price the window differently."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import pandas as pd
import streamlit as st

from dashboard.data import client, fetch
from dashboard.parts import charts, filters, price_notice, ui

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
# What a call is billed on (llm_calls.billing_unit), as people say it.
BILLING_UNITS = {
    "tokens": "Tokens",
    "images": "Images",
    "characters": "Characters",
    "audio_seconds": "Audio",
    "requests": "Requests",
}
# The Responses API's built-in tools, billed per call (per session for Code Interpreter) on top of tokens.
TOOLS = {
    "web_search_calls": "web search",
    "file_search_calls": "file search",
    "code_interpreter_sessions": "code interpreter",
    "image_generation_calls": "image generation",
}


def duration(seconds: float) -> str:
    """Audio length for people: seconds, minutes or hours."""
    if seconds < 60:
        return f"{seconds:,.1f} s"
    if seconds < 3600:
        return f"{seconds / 60:,.1f} min"
    return f"{seconds / 3600:,.1f} h"


def _number(group: dict[str, Any], name: str) -> float:
    value = group.get(name)
    return 0 if value is None or pd.isna(value) else float(value)


def quantity(group: dict[str, Any]) -> str:
    """How much of its billing unit a breakdown group used, with the unit's name (e.g. "images 57", "audio 3.2 h")."""
    unit = group["group"]
    if unit == "tokens":
        return f"tokens {int(_number(group, 'input_tokens') + _number(group, 'output_tokens')):,}"
    if unit == "images":
        return f"images {int(_number(group, 'images')):,}"
    if unit == "characters":
        return f"characters {int(_number(group, 'input_characters')):,}"
    if unit == "audio_seconds":
        return f"audio {duration(_number(group, 'audio_seconds'))}"
    if unit == "requests":
        return f"requests {int(_number(group, 'requests')):,}"
    return ui.NO_DATA


def tool_calls(group: dict[str, Any]) -> str:
    """The built-in tool calls of a group's calls, in all and per tool ("tool calls 5 (web search 3, ...)")."""
    counts = {label: int(_number(group, name)) for name, label in TOOLS.items()}
    if not (total := sum(counts.values())):
        return ui.NO_DATA
    return f"tool calls {total:,} (" + ", ".join(f"{label} {n:,}" for label, n in counts.items() if n) + ")"


def billed_on_table(groups: pd.DataFrame) -> pd.DataFrame:
    """Per billing unit (a breakdown by `billing_unit`): calls, cost, and the quantity of the unit billed."""
    rows = groups.to_dict("records")
    return pd.DataFrame(
        {
            "Billed on": [
                charts.NONE_LABEL if row["group"] is None else BILLING_UNITS.get(row["group"], str(row["group"]))
                for row in rows
            ],
            "Calls": [int(row["requests"]) for row in rows],
            "Cost (USD)": [ui.cost_cell(row["cost_usd"], row["requests"], row["unpriced_requests"]) for row in rows],
            "Quantity": [quantity(row) for row in rows],
            "Built-in tools": [tool_calls(row) for row in rows],
        }
    )


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


def reads(api: str, token: str | None, selection: filters.Selection) -> Sequence[fetch.Read]:
    """What render asks the API for, to fetch at once (the chart and the top spenders by the chosen dimension)."""
    params, dimension = selection.params(), st.session_state.get("spend_by") or "model"
    return [
        lambda: client.breakdown(api, token, params, "model", 1000),
        lambda: client.timeseries(api, token, params, "cost_usd", group_by=dimension),
        lambda: client.breakdown(api, token, params, dimension, TOP),
        lambda: client.breakdown(api, token, params, "billing_unit", 1000),
    ]


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
            "their model is not in the price book, so the cost above leaves them out. A price list that knows the "
            "model (`--prices-update`) or the collector's price overrides price them."
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

    spenders_and_units(context, dimension, label)
    st.subheader("Price list")
    price_notice.render(context.api, context.token, context.selection)


def spenders_and_units(context: ui.Context, dimension: str, label: str) -> None:
    """The top spenders by the chosen dimension, and what the spend is billed on."""
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

    st.subheader("What the spend is billed on")
    units = client.breakdown(context.api, context.token, context.selection.params(), "billing_unit", 1000)
    st.dataframe(billed_on_table(units), hide_index=True, width="stretch")
    st.caption(
        "Tokens (input and output), images (by count, size and quality), characters of text to speech, seconds of "
        'transcribed audio, or per request; "(none)": calls that reported no usage (most failed calls). Built-in '
        "tools (web search, file search, Code Interpreter sessions, image generation) are billed on top of tokens."
    )


ui.live(render, reads=reads)
