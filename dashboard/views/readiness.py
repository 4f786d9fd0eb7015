"""Readiness: the OpenAI production checklist scored from each service's own calls — a table of every service's
score, then one service's card: its score and band, the five categories with each item's evidence and fix, and the
score over time."""

from __future__ import annotations

import json
import math
from typing import Any

import altair as alt
import pandas as pd
import streamlit as st

from dashboard.data import client, fetch, readiness_client
from dashboard.data.alerts_client import RuleRejectedError
from dashboard.data.client import ApiError, EndpointMissingError
from dashboard.data.readiness_client import Card, escape, widget_key
from dashboard.parts import charts, filters, ui

ABOUT = (
    "Each service's calls in this time range, scored against the OpenAI production checklist: 5 points per category, "
    "25 in all (20-25 production ready, 15-19 needs improvement, below 15 not ready); advice items are judged the same "
    "way and not scored. An item without evidence is unknown and scores 0. The team, model and feature filters do not "
    "apply here."
)


CHOSEN = "readiness|chosen"  # the session-state key of the card drawn in full


def band_lines(maximum: int) -> tuple[int, int]:
    """Where "needs improvement" and "production ready" begin (the collector's bands: 60% and 80% of the items)."""
    return math.ceil(maximum * 3 / 5), math.ceil(maximum * 4 / 5)


def _message(key: str, kind: str, text: str) -> None:
    st.session_state[key] = (kind, text)


def _show_message(key: str) -> None:
    if found := st.session_state.get(key):
        kind, text = found
        (st.success if kind == "success" else st.error)(text)


def _create_rule(api: str, token: str | None, card: Card, item_id: str, rule: dict[str, Any]) -> None:
    """Button callback: POST the proposed rule; the verdict is kept for the next render."""
    key = widget_key(card, item_id, "rule_message")
    try:
        rule_id = readiness_client.create_rule(api, token, rule)
    except RuleRejectedError as error:
        _message(key, "error", f"{error.field or 'rule'}: {error.message}")
    except ApiError as error:
        _message(key, "error", error.message)
    else:
        _message(key, "success", f"Created alert rule {rule.get('name', '')!r} (id {rule_id}); see Alerts.")


def _attest(api: str, token: str | None, card: Card, item_id: str) -> None:
    """Form callback: POST who attested, a link and a note."""
    key = widget_key(card, item_id, "attest_message")
    state = st.session_state
    by, link, note = (str(state.get(widget_key(card, item_id, name)) or "").strip() for name in ("by", "link", "note"))
    try:
        readiness_client.attest(api, token, card[0], item_id, by, link, note)
    except ApiError as error:
        _message(key, "error", f"{error.parameter}: {error.detail}" if error.parameter else error.message)
    else:
        _message(key, "success", f"Recorded: {escape(by)} attests {item_id} for {escape(card[0])}.")


def _save_batch(api: str, token: str | None, card: Card) -> None:
    """Form callback: PUT the features marked batch-eligible."""
    key = widget_key(card, "batch_message")
    chosen = list(st.session_state.get(widget_key(card, "batch")) or [])
    try:
        saved = readiness_client.save_batch_features(api, token, card[0], chosen)
    except ApiError as error:
        _message(key, "error", f"{error.parameter}: {error.detail}" if error.parameter else error.message)
    else:
        _message(key, "success", f"Saved {len(saved)} batch-eligible feature(s) for {card[0]}.")


def show_evidence(item: dict[str, Any]) -> None:
    parts = readiness_client.evidence_parts(item.get("evidence"))
    if not parts:
        return
    lines = [f"- {escape(name)}: {readiness_client.fact_markdown(text)}" for name, text in parts.facts]
    lines += [f"- {escape(name)}: " + ", ".join(f"`{value}`" for value in values) for name, values in parts.lists]
    if lines:
        st.markdown("\n".join(lines))
    for name, frame in parts.tables:
        st.caption(name)
        st.dataframe(frame, hide_index=True, width="stretch")


def show_fix(context: ui.Context, card: Card, item: dict[str, Any]) -> None:
    """How to make the item pass: the text, a snippet, and a button where the fix is an alert rule."""
    fix = item.get("fix") or {}
    if item.get("status") == "pass" or not fix:
        return
    if fix.get("text"):
        st.markdown(f"**Fix:** {escape(fix['text'])}")
    if fix.get("snippet"):
        st.code(fix["snippet"], language=readiness_client.snippet_language(fix["snippet"]), wrap_lines=True)
    if rule := fix.get("rule"):
        st.markdown(f"**Alert rule:** `{readiness_client.rule_condition(rule)}`")
        st.code(json.dumps(rule), language="json", wrap_lines=True)
        st.button(
            "Create this alert rule",
            key=widget_key(card, item["id"], "rule"),
            on_click=_create_rule,
            args=(context.api, context.token, card, item["id"], rule),
            icon=":material/add_alert:",
            type="primary",
        )


def attestation_form(context: ui.Context, card: Card, item: dict[str, Any]) -> None:
    """Who attests the item, a link to the proof (a load-test report, the mocked test suite) and a note."""
    with st.form(widget_key(card, item["id"], "attest")):
        st.markdown("**Attest** (shown as attested, never as observed)")
        by, link = st.columns(2)
        by.text_input("By", key=widget_key(card, item["id"], "by"), placeholder="jane@example.com")
        link.text_input("Link", key=widget_key(card, item["id"], "link"), placeholder="https://ci.example.com/run/42")
        st.text_input("Note", key=widget_key(card, item["id"], "note"))
        st.form_submit_button(
            "Record attestation",
            on_click=_attest,
            args=(context.api, context.token, card, item["id"]),
            icon=":material/verified:",
        )
    _show_message(widget_key(card, item["id"], "attest_message"))


def batch_form(context: ui.Context, card: Card) -> None:
    """Mark the service's features that may wait for the Batch API (the `cost.batch` item stays unknown until then)."""
    service = card[0]
    try:
        saved = readiness_client.batch_features(context.api, context.token, service)
        since = context.selection.start.date().isoformat()
        features = client.group_values(context.api, context.token, "feature", since, (("service", service),))
    except ApiError as error:
        ui.show_error(error)
        return
    with st.form(widget_key(card, "batch_form")):
        st.multiselect(
            "Batch-eligible features",
            sorted({*features, *saved}),
            default=saved,
            key=widget_key(card, "batch"),
            help="Features that are not interactive and could use the Batch API at half the price.",
        )
        st.form_submit_button(
            "Save batch-eligible features",
            on_click=_save_batch,
            args=(context.api, context.token, card),
            icon=":material/save:",
        )
    _show_message(widget_key(card, "batch_message"))


def show_item(context: ui.Context, card: Card, item: dict[str, Any]) -> None:
    with st.expander(readiness_client.item_label(item), key=widget_key(card, item["id"], "item")):
        st.caption(f"`{item['id']}` · {item.get('status', 'unknown')} · {readiness_client.basis(item)}")
        show_evidence(item)
        show_fix(context, card, item)
        _show_message(widget_key(card, item["id"], "rule_message"))
        if item["id"] in readiness_client.ATTESTABLE_ITEMS:
            attestation_form(context, card, item)
        if item["id"] == readiness_client.BATCH_ITEM:
            batch_form(context, card)


def score_chart(frame: pd.DataFrame, maximum: int) -> alt.LayerChart:
    """The daily score as a line on a 0-max axis (one tick per UTC day at most), the band boundaries dashed."""
    days = frame.assign(label=frame["day"].dt.strftime("%Y-%m-%d"))
    line = (
        alt.Chart(days)
        .mark_line(point=alt.OverlayMarkDef(size=30))
        .encode(
            x=alt.X(
                "day:T",
                title="Day (UTC)",
                scale=alt.Scale(type="utc"),
                axis=alt.Axis(format="%d %b", tickCount={"interval": "day", "step": 1}, labelOverlap=True),
            ),
            y=alt.Y(
                "score:Q",
                title=f"Score (of {maximum})",
                scale=alt.Scale(domain=[0, maximum]),
                axis=alt.Axis(tickMinStep=1),
            ),
            tooltip=[alt.Tooltip("label:N", title="Day (UTC)"), alt.Tooltip("score:Q", title="Score")],
        )
    )
    bands = (
        alt.Chart(pd.DataFrame({"score": band_lines(maximum)}))
        .mark_rule(strokeDash=[4, 4], color="#888888")
        .encode(y=alt.Y("score:Q"))
    )
    return alt.layer(line, bands).properties(height=200)


def show_history(context: ui.Context, card: Card, maximum: int, rules: str) -> None:
    selection = context.selection
    days = readiness_client.history_days(selection.start, selection.end)
    try:
        frame = readiness_client.history(context.api, context.token, card[0], card[1], days, rules)
    except ApiError as error:
        ui.show_error(error)
        return
    if frame["score"].notna().sum() == 0:
        st.caption(f"No score history for the last {days} days yet.")
        return
    charts.show(score_chart(frame, maximum))
    lower, upper = band_lines(maximum)
    st.caption(f"Daily score over the last {days} UTC days; dashed lines at {lower} and {upper}.")


def show_card(context: ui.Context, card: Card, card_score: dict[str, Any], rules: str) -> None:
    """One service: score and band, the score over time, then the five categories item by item."""
    categories = card_score.get("categories") or []
    maximum = int(card_score.get("max") or sum(len(category.get("items") or []) for category in categories))
    with st.container(border=True, key=widget_key(card, "card")):
        summary, parts, history = st.columns([1, 1.2, 2.3])
        with summary:
            st.metric(readiness_client.card_title(card), f"{card_score['score']} / {maximum}")
            band = str(card_score.get("band") or "")
            st.badge(band, color=readiness_client.band_color(band), icon=":material/verified:")
            if unknown := int(card_score.get("unknown") or 0):
                st.badge(
                    f"{unknown} unknown",
                    color="gray",
                    icon=":material/help:",
                    help="Items without evidence in this time range (e.g. spans from another instrumentation); "
                    "each scores 0.",
                )
        with parts:
            for category in categories:
                fill = category["score"] / category["max"] if category.get("max") else 0.0
                st.progress(fill, text=f"{category['name']}: {category['score']}/{category['max']}")
        with history:
            show_history(context, card, maximum, rules)
        # Tabs named by category only: a label that changes (a score) would reset the open tab on the next run.
        tabs = st.tabs([str(category["name"]) for category in categories])
        for tab, category in zip(tabs, categories, strict=True):
            with tab:
                for item in category.get("items") or []:
                    show_item(context, card, item)
        if not any(item.get("id") == readiness_client.BATCH_ITEM for c in categories for item in c.get("items") or []):
            batch_form(context, card)


def overview(scored: list[tuple[Card, dict[str, Any]]]) -> None:
    """Several cards: first a table of their scores, worst first."""
    rows = [
        {
            "Service": card[0],
            "Environment": card[1] or "all",
            "Score": int(score["score"]),
            "Band": score.get("band"),
            "Unknown items": int(score.get("unknown") or 0),
        }
        for card, score in scored
    ]
    st.dataframe(pd.DataFrame(rows).sort_values("Score", kind="stable"), hide_index=True, width="stretch")


def card_reads(context: ui.Context, card: Card, rules: str) -> list[fetch.Read]:
    """What a card reads besides its scorecard: its history, batch-eligible features and the service's features."""
    api, token, selection = context.api, context.token, context.selection
    days, since = readiness_client.history_days(selection.start, selection.end), selection.start.date().isoformat()
    return [
        lambda: readiness_client.history(api, token, *card, days, rules),
        lambda: readiness_client.batch_features(api, token, card[0]),
        lambda: client.group_values(api, token, "feature", since, (("service", card[0]),)),
    ]


def chosen(scored: list[tuple[Card, dict[str, Any]]]) -> tuple[Card, dict[str, Any]]:
    """Several cards: the one to draw in full, chosen below the table (at first the worst, the table's first row).
    One card's items are a hundred-odd elements: drawing every card's made the page take seconds."""
    ordered = sorted(scored, key=lambda pair: int(pair[1]["score"]))  # stable, as the table's order
    cards = [card for card, _ in ordered]
    card = st.selectbox(
        "Card",
        cards,
        format_func=readiness_client.card_title,
        key=CHOSEN,
        help="The service (and environment) whose items, fixes and score history are shown below.",
    )
    return ordered[cards.index(card)]


def render(context: ui.Context) -> None:
    st.caption(ABOUT)
    since = context.selection.start.date().isoformat()
    known = client.group_values(context.api, context.token, "service", since)
    shown = readiness_client.cards(context.selection.filters, known)
    if not shown:
        st.info("No service has sent calls in this time range yet: widen the time range in the sidebar.")
        return
    start, end = filters.iso(context.selection.start), filters.iso(context.selection.end)
    rules = readiness_client.rules_version(context.api, context.token)
    api, token = context.api, context.token
    # Every scorecard at once, with the other reads of the card likely drawn: the only one, or the one drawn last
    # time (the scores decide the first visit's, so its reads wait for them).
    likely = shown[0] if len(shown) == 1 else st.session_state.get(CHOSEN)
    fetch.concurrently(
        [
            *(lambda card=card: readiness_client.scorecard(api, token, *card, start, end, rules) for card in shown),
            *(card_reads(context, likely, rules) if likely in shown else ()),
        ]
    )
    scored: list[tuple[Card, dict[str, Any]]] = []
    failed: list[tuple[Card, ApiError]] = []
    for card in shown:
        try:
            scored.append((card, readiness_client.scorecard(api, token, *card, start, end, rules)))
        except EndpointMissingError:
            raise  # an older collector: one message for the page
        except ApiError as error:
            failed.append((card, error))
    if len(scored) > 1:
        overview(scored)
    for card, error in failed:
        st.error(f"{readiness_client.card_title(card)}: {error.message}")
    if not scored:
        return
    card, card_score = chosen(scored) if len(scored) > 1 else scored[0]
    if card != likely:
        fetch.concurrently(card_reads(context, card, rules))
    show_card(context, card, card_score, rules)


ui.live(render, require_calls=False)
