"""Reconciliation: our spend against OpenAI's own bill (its Costs and Usage APIs) per UTC day and per model, the
spend no instrumented call accounts for, and the state of the pulls."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pandas as pd
import streamlit as st

from dashboard.data import client, reconcile_client
from dashboard.data.client import ApiError
from dashboard.parts import charts, filters, ui

PERIODS = {"7": "7 days", "14": "14 days", "30": "30 days", "90": "90 days"}
DEFAULT_PERIOD = "14"
SETUP = """\
export OPENAI_ADMIN_KEY=sk-admin-...        # or: --openai-admin-key-file /run/secrets/openai-admin-key
llmledger collector --reconcile-interval 21600  # pulls the last 3 days every 6 hours (the default)
llmledger reconcile --from 2026-11-01 --to 2026-12-01  # a month, on demand
"""


def when(text: str | None) -> str:
    """An API timestamp as a UTC minute."""
    return ui.NO_DATA if not text else f"{datetime.fromisoformat(text):%Y-%m-%d %H:%M} UTC"


def pull_problem(run: dict[str, Any]) -> str:
    """What a failed pull means for the operator: a refused key is a missing scope, said first."""
    if run.get("http_status") in reconcile_client.SCOPE_STATUSES:
        return (
            f"The admin key lacks the api.usage.read scope (OpenAI answered {run['http_status']} to the pull at "
            f"{when(run['started_at'])}). Create an organization admin key with read access to Usage and give it "
            f"to the collector. Details: {run['error']}"
        )
    return f"The pull at {when(run['started_at'])} failed: {run['error']}"


def empty_state() -> None:
    st.info(
        "The collector has no OpenAI admin key, so there is no bill to compare with yet. Give it an organization "
        "admin key with the **api.usage.read** scope and it pulls OpenAI's Costs and Usage APIs every 6 hours."
    )
    st.code(SETUP, language="bash")
    st.caption("The key is read from the environment or the file only: it is never logged, stored or shown.")


def pulls(status: dict[str, Any]) -> None:
    """The last pull, its error if it failed, and the schedule."""
    runs = status["runs"]
    if not runs:
        st.info("No pull from OpenAI yet: the first scheduled pull runs when the collector starts, or pull now.")
        return
    last = runs[0]
    ok = next((run for run in runs if run["ok"]), None)
    interval = status["interval_s"]
    schedule = (
        f"every {interval / 3600:g} h over the last {status['pull_days']} UTC days" if interval else "on demand only"
    )
    st.caption(
        f"Last pull: {when(last['finished_at'])} ({'ok' if last['ok'] else 'failed'}, {last['trigger']}). "
        f"Last successful pull: {when(ok['finished_at']) if ok else 'never'}. Pulls: {schedule}."
    )
    if not last["ok"]:
        st.error(pull_problem(last), icon=":material/key_off:")
    if not status["configured"]:
        st.warning("The collector no longer has an admin key: what is shown is from earlier pulls.")


def pull_button(api: str, token: str | None, start: str, end: str, configured: bool) -> None:
    if not st.button("Pull from OpenAI now", key="reconcile_pull", disabled=not configured, icon=":material/sync:"):
        return
    try:
        run = reconcile_client.pull(api, token, start, end)
        st.success(f"Pulled {run['cost_rows']:,} cost rows and {run['usage_rows']:,} usage rows from OpenAI.")
    except ApiError as error:
        if error.status == 502:
            runs = reconcile_client.status(api, token)["runs"]
            st.error(pull_problem(runs[0]) if runs else error.detail)
        else:
            ui.show_error(error)


def money(value: Any) -> str:
    return "not pulled" if value is None else str(value)


def day_table(rows: pd.DataFrame, keys: dict[str, str]) -> pd.DataFrame:
    """Rows as the API sent them, labelled; exact decimal strings kept."""
    table = pd.DataFrame(
        {label: rows[key].map(lambda v: charts.NONE_LABEL if v is None else v) for key, label in keys.items()}
    )
    table["Ours (USD)"] = rows["our_cost_usd"]
    table["OpenAI (USD)"] = rows["openai_cost_usd"].map(money)
    table["Gap (USD)"] = rows["diff_usd"].map(lambda v: ui.NO_DATA if v is None else v)
    table["Gap %"] = rows["diff_pct"].map(lambda v: ui.NO_DATA if v is None else f"{v}%")
    for side, label in (("our", "Ours"), ("openai", "OpenAI")):
        for name, title in (
            ("input_tokens", "input tokens"),
            ("output_tokens", "output tokens"),
            ("requests", "requests"),
        ):
            table[f"{label} {title}"] = pd.to_numeric(rows[f"{side}_{name}"]).astype("Int64")
    table["Unpriced calls (ours)"] = pd.to_numeric(rows["our_unpriced_requests"]).astype("Int64")
    return table


def chart(rows: pd.DataFrame) -> None:
    pulled = rows[rows["openai_cost_usd"].notna()]
    frame = pd.concat(
        [
            pd.DataFrame({"time": pulled["day"], "group": label, "value": pulled[column].map(lambda v: float(v))})
            for column, label in (("our_cost_usd", "Ours (price book)"), ("openai_cost_usd", "OpenAI (billed)"))
        ]
    )
    frame["time"] = pd.to_datetime(frame["time"], utc=True)
    charts.show(
        charts.series(
            frame, y_title="Cost (USD)", value_format="$,.6f", axis_format="$,.2~f", group_title="Source", bucket="1d"
        )
    )


def _seen(kind: str | None, seen: bool) -> str:
    if kind == "outside_calls":
        return "billed outside calls"
    return "yes (partly untracked)" if seen else "no"


def untracked(compared: reconcile_client.Comparison) -> None:
    total = ui.decimal(compared.totals["untracked_usd"])
    if not total:
        st.success("No untracked spend: every dollar OpenAI billed on the days pulled is accounted for by our calls.")
        return
    st.warning(
        f"**Untracked spend: {ui.usd(total)}.** OpenAI billed this on the days below but no instrumented call "
        "accounts for it: an app or key without llmledger, or charges billed outside calls (storage, fine-tuning "
        "training). Line items of a model we saw (tool calls join the model of the calls that made them) carry "
        "that model's cost beyond ours.",
        icon=":material/visibility_off:",
    )
    items = compared.untracked
    st.dataframe(
        pd.DataFrame(
            {
                "Day": items["day"],
                "Line item": items["line_item"].map(lambda v: "(no line item)" if v is None else v),
                "Untracked (USD)": items["untracked_usd"],
                "Line item billed (USD)": items["openai_cost_usd"],
                "Model seen by us": [
                    _seen(kind, seen) for kind, seen in zip(items["kind"], items["model_seen"], strict=True)
                ],
            }
        ),
        hide_index=True,
        width="stretch",
    )


def render() -> None:
    api, token = client.api_url(), client.read_token()
    st.header("Reconciliation with OpenAI's bill")
    try:
        status = reconcile_client.status(api, token)
        if not status["configured"] and not status["runs"]:
            empty_state()
            return
        pulls(status)
        period = st.segmented_control(
            "Days (UTC)", list(PERIODS), format_func=PERIODS.get, default=DEFAULT_PERIOD, key="reconcile_days"
        )
        today = filters.now_utc().date()
        start, end = (
            (today - timedelta(days=int(period or DEFAULT_PERIOD) - 1)).isoformat(),
            (today + timedelta(days=1)).isoformat(),
        )
        pull_button(api, token, start, end, status["configured"])
        compared = reconcile_client.comparison(api, token, start, end, "day")
        if not compared.totals["days_pulled"]:
            st.info(f"No day from {start} to {today} has been pulled from OpenAI yet.")
            return
        totals = compared.totals
        ours, theirs, gap, lost = st.columns(4)
        ours.metric("Ours (price book)", ui.usd(totals["our_cost_usd"]), border=True)
        theirs.metric("OpenAI (billed)", ui.usd(totals["openai_cost_usd"]), border=True)
        gap.metric(
            "Gap (OpenAI - ours)",
            ui.usd(totals["diff_usd"]),
            None if totals["diff_pct"] is None else f"{totals['diff_pct']}%",
            delta_color="off",
            border=True,
        )
        lost.metric("Untracked spend", ui.usd(totals["untracked_usd"]), border=True)
        st.caption(
            f"Days pulled: {totals['days_pulled']}. The sidebar's filters do not apply: OpenAI bills the whole "
            "organization. Gap % is the gap as a share of OpenAI's cost."
        )
        st.subheader("Per day")
        chart(compared.rows)
        st.dataframe(day_table(compared.rows, {"day": "Day"}), hide_index=True, width="stretch")
        untracked(compared)
        st.subheader("Per model")
        by_model = reconcile_client.comparison(api, token, start, end, "model")
        st.dataframe(day_table(by_model.rows, {"day": "Day", "model": "Model"}), hide_index=True, width="stretch")
        st.caption(
            "Models are matched without OpenAI's dated snapshot suffix (gpt-4o-mini-2024-07-18 is gpt-4o-mini). "
            "OpenAI's tokens and requests are its completions usage (chat and responses); its cost is by line item."
        )
    except ApiError as error:
        ui.show_error(error)


render()
