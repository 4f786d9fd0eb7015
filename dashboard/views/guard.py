"""Guard: what the guard in the apps (llmledger/guard/) did to calls, which circuits are open, and its budgets."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard.data import guard_client
from dashboard.data.client import ApiError
from dashboard.parts import charts, filters, ui

LABELS = {
    "blocked": "Blocked",
    "downgraded": "Downgraded",
    "circuit_open": "Circuit open",
    "paced": "Paced",
    "rerouted": "Rerouted",
    "warned": "Warned",
}


def action_metrics(context: ui.Context) -> None:
    """How many calls each guard action touched in the window."""
    counts = guard_client.action_counts(context.api, context.token, context.selection.params())
    for column, action in zip(st.columns(len(LABELS)), LABELS, strict=True):
        column.metric(LABELS[action], ui.count(counts.get(action, 0)), border=True)


def actions_chart(context: ui.Context) -> None:
    bucket, frame = guard_client.actions_over_time(context.api, context.token, context.selection.params())
    st.subheader(f"Calls the guard acted on ({bucket} buckets)")
    if frame.empty:
        st.info("The guard acted on no call in this window (or no app runs it: `llmledger.guard`).")
        return
    frame = frame.assign(group=frame["group"].map(lambda action: LABELS.get(action, action)))
    charts.show(
        charts.series(
            charts.label_groups(frame),
            y_title="Calls",
            value_format=",",
            whole_numbers=True,
            bucket=bucket,
            mark="bar",
            group_title="Guard action",
        )
    )


def circuits(context: ui.Context) -> None:
    """Circuits that turned calls away in the last 15 minutes (whatever the sidebar's window)."""
    st.subheader("Open circuits (last 15 minutes)")
    found = guard_client.open_circuits(context.api, context.token, context.selection.filters, filters.now_utc())
    if found.empty:
        st.success("No circuit turned a call away in the last 15 minutes.")
        return
    st.warning(f"{len(found)} circuit(s) turned calls away in the last 15 minutes.")
    shown = pd.DataFrame(
        {
            "Circuit (provider/model)": found["breaker"],
            "Calls turned away": found["calls"],
            "Last seen (UTC, minute)": found["last_seen"].dt.strftime("%Y-%m-%d %H:%M"),
        }
    )
    st.dataframe(shown, hide_index=True, width="stretch")


def budget_text(budget: guard_client.Budget) -> str:
    period = "today" if budget.window == "day" else "this month"
    action = f"downgrade to {budget.downgrade_to}" if budget.action == "downgrade" else budget.action
    text = f"{budget.name}: spent {ui.usd(budget.spent)} {period} of {ui.usd(budget.limit)} — then {action}"
    return text + (" (acting now)" if budget.over else "")


def budgets(context: ui.Context) -> None:
    """Each enforced budget's spend against its limit, and what the guard does once it is spent."""
    st.subheader("Enforced budgets")
    found = guard_client.budgets(context.api, context.token)
    if not found:
        st.info("No budget is enforced. On the Alerts page, give a cost rule (UTC day or month) an enforce action.")
        return
    st.caption("Spend so far in each budget's UTC day or month, as the guard in every app reads it.")
    for budget in found:
        st.progress(budget.fill, text=budget_text(budget))
    frame = pd.DataFrame(
        [
            {
                "Budget": budget.name,
                "id": budget.id,
                "Window (UTC)": budget.window,
                "Filters": "; ".join(f"{key}={','.join(values)}" for key, values in budget.filters.items()),
                "Spent (USD)": str(budget.spent),
                "Limit (USD)": str(budget.limit),
                "Action": budget.action,
                "Downgrade to": budget.downgrade_to or "",
                "Acting now": budget.over,
            }
            for budget in found
        ]
    )
    st.dataframe(frame, hide_index=True, width="stretch")


def render(context: ui.Context) -> None:
    """The counts and the chart for the sidebar's window, then the circuits open now and the budgets."""
    action_metrics(context)
    actions_chart(context)
    circuits(context)
    try:
        budgets(context)
    except ApiError as error:  # an older collector without the endpoint: the traffic above still shows
        ui.show_error(error)


ui.live(render, require_calls=False)
