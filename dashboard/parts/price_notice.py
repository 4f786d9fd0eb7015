"""The Spend page's price-list part: which list prices new calls and how old it is, a failing update, the models
seen with no price, and, when a newer list would price the window's calls differently, re-pricing offered with a
dry-run diff (calls and dollars per model) before anything changes."""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from dashboard.data import prices_client
from dashboard.data.client import ApiError
from dashboard.parts import filters, ui

PREVIEW_KEY = "reprice_preview"


def age(seconds: float | None) -> str:
    """How long ago, for people: minutes, hours or days."""
    if seconds is None:
        return ui.NO_DATA
    if seconds < 3600:
        return f"{max(seconds, 0) / 60:.0f} min"
    if seconds < 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def describe(price_list: dict[str, Any]) -> str:
    """One line: which list, from where, how old."""
    if price_list["bundled"]:
        line = f"Prices: the list bundled with the collector ({price_list['list_version']}), never updated"
        return line + ("." if not price_list["updates"]["enabled"] else ": no update has arrived yet.")
    return (
        f"Prices: list {price_list['list_version']} ({price_list['models']:,} models) from {price_list['source']}, "
        f"fetched {age(price_list['age_s'])} ago, last found current {price_list['checked_at'] or ui.NO_DATA}."
    )


def unpriced_table(models: list[dict[str, Any]]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "Model": [model["model"] for model in models],
            "Provider": [model["provider"] for model in models],
            "Calls": [model["requests"] for model in models],
            "Input tokens": [model["input_tokens"] for model in models],
            "Output tokens": [model["output_tokens"] for model in models],
            "Priced by the list now": [model["priced_now"] for model in models],
        }
    )


def changes_table(answer: dict[str, Any]) -> pd.DataFrame:
    frame = prices_client.changes(answer)
    return pd.DataFrame(
        {
            "Model": frame["model"],
            "Calls changing": frame["rows_changed"],
            "Costs changing": frame["costs_changed"],
            "Now (USD)": frame["old_usd"],
            "After (USD)": frame["new_usd"],
            "Difference (USD)": frame["difference_usd"],
        }
    )


def render(api: str, token: str | None, selection: filters.Selection) -> None:
    start, end = filters.iso(selection.start), filters.iso(selection.end)
    answer = prices_client.price_list(api, token, start, end)
    price_list = answer["price_list"]
    st.caption(describe(price_list))
    updates = price_list["updates"]
    if updates["enabled"] and updates["last_error"]:
        st.warning(
            f"The last {updates['failures_since_success']} price-list update(s) failed ({updates['last_error']}); "
            "new calls are still priced with the list above."
        )
    if answer["unpriced_models"]:
        st.subheader("Models with no price")
        st.dataframe(unpriced_table(answer["unpriced_models"]), hide_index=True, width="stretch")
        st.caption(
            "Calls of these models are left out of the cost. A price list that knows them, or the collector's "
            "price overrides, prices their next calls; re-pricing prices the stored ones."
        )
    offered = answer["reprice_offered"]
    if not (offered["other_version_requests"] or offered["newly_priced_requests"]):
        return
    st.info(
        f"The price list in use is newer than what priced part of this window: "
        f"{ui.count(offered['other_version_requests'])} calls were priced with another list, and "
        f"{ui.count(offered['newly_priced_requests'])} unpriced calls have a model it knows now. Stored costs change "
        "only if you re-price this window (every call in it, whatever the filters).",
        icon=":material/price_change:",
    )
    try:
        if st.button("Preview re-pricing (dry run)", key="reprice_preview_button", icon=":material/preview:"):
            preview = prices_client.reprice(api, token, start, end, dry_run=True)
            st.session_state[PREVIEW_KEY] = (start, end, preview)
        kept = st.session_state.get(PREVIEW_KEY)
        if kept is None or kept[:2] != (start, end):
            return
        preview = kept[2]
        st.markdown(
            f"Re-pricing would change **{ui.count(preview['rows_changed'])}** of {ui.count(preview['rows_seen'])} "
            f"calls (**{ui.count(preview['costs_changed'])}** in cost): {ui.usd(preview['old_total_usd'])} → "
            f"{ui.usd(preview['new_total_usd'])} ({preview['difference_usd']} USD), with {preview['price_version']}."
        )
        st.dataframe(changes_table(preview), hide_index=True, width="stretch")
        if st.button("Re-price these calls", key="reprice_apply_button", type="primary"):
            done = prices_client.reprice(api, token, start, end, dry_run=False)
            del st.session_state[PREVIEW_KEY]
            st.success(
                f"Re-priced: {ui.count(done['rows_changed'])} calls changed, now {ui.usd(done['new_total_usd'])}."
            )
    except ApiError as error:
        ui.show_error(error)
