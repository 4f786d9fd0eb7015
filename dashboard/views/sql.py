"""SQL: one read-only SELECT over the collector's views of the data, its result as a table and a chart, and the
queries the team saved (kept in the collector, so every dashboard sees the same ones)."""

from __future__ import annotations

from typing import Any

import streamlit as st

from dashboard.data import client, sql_client
from dashboard.data.client import ApiError
from dashboard.parts import charts, result_chart, ui

EXAMPLE = """\
SELECT day, sum(cost_usd) AS cost_usd, sum(requests) AS requests
FROM llm_calls_daily
GROUP BY day
ORDER BY day"""
TABLES = (
    "llm_calls",
    "llm_calls_daily",
    "openai_costs",
    "openai_usage",
    "openai_pulled_days",
    "reconcile_runs",
    "price_rates",
    "reprice_runs",
)
# What a refused (400) or cancelled (408) query shows: the collector's own words, and what to do next.
OUTCOMES = {
    400: "The collector refused the query: {detail}",
    408: "{detail}. Narrow it (a WHERE on start_time or day) or aggregate llm_calls_daily instead of llm_calls.",
}


def load_saved(queries: dict[int, dict[str, Any]]) -> None:
    """Put the chosen saved query in the editor (a callback: it runs before the editor is drawn)."""
    chosen = st.session_state.get("sql_saved")
    if chosen in queries:
        st.session_state["sql_text"] = queries[chosen]["sql"]
        st.session_state["sql_save_name"] = queries[chosen]["name"]


def save(api: str, token: str | None) -> None:
    name, text = st.session_state.get("sql_save_name", ""), st.session_state.get("sql_text", "")
    try:
        query = sql_client.save(api, token, name, text)
    except ApiError as error:
        st.session_state["sql_notice"] = ("error", f"Not saved: {error.message}")
        return
    st.session_state["sql_saved"] = query["id"]
    st.session_state["sql_notice"] = ("success", f"Saved {query['name']!r}.")


def delete(api: str, token: str | None, query: dict[str, Any]) -> None:
    try:
        sql_client.delete(api, token, query["id"])
    except ApiError as error:
        st.session_state["sql_notice"] = ("error", f"Not deleted: {error.message}")
        return
    st.session_state["sql_saved"] = None
    st.session_state["sql_notice"] = ("success", f"Deleted {query['name']!r}.")


def run(api: str, token: str | None, text: str) -> None:
    """Run the editor's statement and keep the outcome, so the result stays while other widgets rerun the page."""
    try:
        st.session_state["sql_outcome"] = sql_client.run(api, token, text)
    except ApiError as error:
        shown = OUTCOMES.get(error.status or 0)
        st.session_state["sql_outcome"] = (shown.format(detail=error.detail), error.status) if shown else error


def result(answer: sql_client.Answer) -> None:
    rows = answer.rows
    st.caption(f"{len(rows):,} rows in {answer.elapsed_ms:,.0f} ms.")
    if answer.truncated:
        st.warning(f"Only the first {answer.max_rows:,} rows came back: aggregate, or add a LIMIT.")
    st.dataframe(rows, hide_index=True, width="stretch", key="sql_result")
    chosen = result_chart.axes(answer.types)
    if chosen is None:
        st.caption("No chart: a chart needs a numeric column and a text or time column.")
        return
    charts.show(result_chart.chart(rows, chosen))
    by = f", one colour per {chosen.color}" if chosen.color else ""
    st.caption(f"{chosen.y} by {chosen.x}{by} (the first numeric and the first text or time column).")


def render() -> None:
    api, token = client.api_url(), client.read_token()
    st.header("SQL")
    st.caption(
        f"One SELECT over {', '.join(f'`{name}`' for name in TABLES)}, run by the collector in a sandbox: "
        "read-only, no files or network, at most 10,000 rows and 10 seconds. Times are UTC."
    )
    try:
        queries = {query["id"]: query for query in sql_client.saved(api, token)}
    except ApiError as error:
        ui.show_error(error)
        queries = {}
    st.selectbox(
        "Saved query",
        [None, *queries],
        format_func=lambda chosen: "(none: write your own)" if chosen is None else queries[chosen]["name"],
        key="sql_saved",
        on_change=load_saved,
        args=(queries,),
    )
    st.session_state.setdefault("sql_text", EXAMPLE)
    text = st.text_area("SQL", key="sql_text", height=180)
    if st.button("Run", type="primary", key="sql_run", icon=":material/play_arrow:"):
        run(api, token, text)
    with st.expander("Save or delete", icon=":material/bookmark:"):
        st.text_input("Name", key="sql_save_name", max_chars=200)
        save_column, delete_column = st.columns(2)
        save_column.button("Save query", key="sql_save", on_click=save, args=(api, token))
        chosen = queries.get(st.session_state.get("sql_saved"))
        if chosen is not None:
            delete_column.button(
                f"Delete {chosen['name']!r}", key="sql_delete", on_click=delete, args=(api, token, chosen)
            )
        st.caption("Saving and deleting need the dashboard to hold the admin token; the collector checks the SQL.")
    if notice := st.session_state.pop("sql_notice", None):
        (st.success if notice[0] == "success" else st.error)(notice[1])
    outcome = st.session_state.get("sql_outcome")
    if isinstance(outcome, sql_client.Answer):
        result(outcome)
    elif isinstance(outcome, tuple):
        st.error(outcome[0], icon=":material/block:" if outcome[1] == 400 else ":material/timer_off:")
    elif isinstance(outcome, ApiError):
        ui.show_error(outcome)


render()
