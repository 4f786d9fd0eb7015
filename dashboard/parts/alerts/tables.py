"""Read-only displays of the alerts API: the rules table, budget bars, state history and notification deliveries."""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from dashboard.data import alerts_client

STATE_ORDER = {"firing": 0, "pending": 1, "ok": 2}
STATE_LABELS = {"firing": "🔴 firing", "pending": "🟠 pending", "ok": "🟢 ok"}


def condition(rule: dict[str, Any]) -> str:
    """A rule's condition in one line: `error_rate > 0.05 over 5m for 600s`, `no calls for 30m`, or
    `requests > hour_of_week band (sensitivity 3) over 1h`, with its warning level and groups."""
    kind = rule.get("kind") or "threshold"
    if kind == "no_data":
        text = f"no calls for {rule['window']}"
    elif kind == "anomaly":
        text = f"{rule['metric']} {rule['op']} {rule['baseline']} band (sensitivity {rule['sensitivity']:g}) over 1h"
    else:
        text = f"{rule['metric']} {rule['op']} {rule['threshold']:g} over {rule['window']}"
        if rule.get("warning_threshold") is not None:
            text += f" (warning at {rule['warning_threshold']:g})"
    if rule.get("group_by"):
        text += f", per {rule['group_by']} (max {rule['max_groups']})"
    if rule.get("for"):
        text += f" for {rule['for']}"
    if rule.get("min_requests"):
        text += f" (min {rule['min_requests']} requests)"
    if enforce := rule.get("enforce"):
        action = enforce["action"]
        text += f"; enforced: {action}" + (f" to {enforce['downgrade_to']}" if action == "downgrade" else "")
    return text


def rules_frame(rules: list[dict[str, Any]]) -> pd.DataFrame:
    """One row per rule, firing first, then pending, then ok (disabled last within each)."""
    ordered = sorted(rules, key=lambda rule: (STATE_ORDER.get(rule["state"], 3), not rule["enabled"], rule["id"]))
    rows = [
        {
            "State": STATE_LABELS.get(rule["state"], rule["state"]),
            "Rule": rule["name"],
            "Condition": condition(rule),
            "Value": rule["value"],
            "Groups": groups_text(rule),
            "Since": rule.get("state_since"),
            "Filters": "; ".join(f"{key}={','.join(values)}" for key, values in (rule.get("filters") or {}).items()),
            "Channels": ", ".join(channel_text(channel) for channel in rule.get("channels") or []),
            "Enabled": bool(rule["enabled"]),
            "id": rule["id"],
        }
        for rule in ordered
    ]
    return pd.DataFrame(rows, columns=["State", "Rule", "Condition", "Value", "Groups", "Since", "Filters", "Channels",
                                       "Enabled", "id"])  # fmt: skip


def channel_text(channel: dict[str, Any]) -> str:
    """A channel as the API shows it (secrets masked): its type and where it goes."""
    if channel["type"] == "email":
        return f"email {', '.join(channel.get('to') or [])} via {channel.get('host')}"
    return f"{channel['type']} {channel.get('url') or channel.get('routing_key') or ''}".strip()


def groups_text(rule: dict[str, Any]) -> str:
    """A grouped rule's groups: how many are not ok of those measured, and how many the cap left out."""
    if not rule.get("group_by"):
        return ""
    busy = [group for group in rule.get("groups") or [] if group["state"] != "ok"]
    text = ", ".join(f"{group['group']} {group['state']}" for group in busy[:5]) or "all ok"
    if rule.get("groups_measured") is not None:
        text += f" ({rule['groups_measured']} measured"
        text += f", {rule['groups_left_out']} left out)" if rule.get("groups_left_out") else ")"
    return text


def show_rules(rules: list[dict[str, Any]]) -> None:
    """The list: a banner for firing rules, then every rule with its state and current value."""
    st.subheader("Rules")
    if not rules:
        st.info("No alert rules yet. Add one below.")
        return
    firing = [rule["name"] for rule in rules if rule["state"] == "firing"]
    if firing:
        st.error(f"Firing ({len(firing)}): {', '.join(firing)}", icon=":material/notifications_active:")
    st.dataframe(rules_frame(rules), hide_index=True, width="stretch")


def show_budgets(budgets: list[alerts_client.Budget]) -> None:
    """Each budget rule's spend so far and its forecast for the period's end, against its limit."""
    if not budgets:
        return
    st.subheader("Budgets")
    st.caption("Spend so far in each budget's UTC day or month, and where the pace so far would end it.")
    for budget in budgets:
        for column, (fill, text) in zip(st.columns(2), budget.bars(), strict=True):
            column.progress(fill, text=text)


def show_events(rules: list[dict[str, Any]], events: list[dict[str, Any]]) -> None:
    """State changes, newest first (as the API sends them)."""
    st.subheader("History")
    if not events:
        st.caption("No state changes yet.")
        return
    names = {rule["id"]: rule["name"] for rule in rules}
    frame = pd.DataFrame(
        [
            {
                "Time": event["time"],
                "Rule": names.get(event["rule_id"], f"deleted rule {event['rule_id']}"),
                "From": event["from_state"],
                "To": STATE_LABELS.get(event["to_state"], event["to_state"]),
                "Group": ", ".join(f"{name}={value}" for name, value in (event.get("group") or {}).items()),
                "Severity": event.get("severity") or "",
                "Value": event["value"],
                "Threshold": event["threshold"],
                "Silenced": f"by silence {event['silence_id']}" if event.get("silenced") else "",
                "Acknowledged by": event.get("acked_by") or "",
            }
            for event in events
        ]
    )
    st.dataframe(frame, hide_index=True, width="stretch")


def show_deliveries(attempts: list[dict[str, Any]]) -> None:
    """Failed and successful notification deliveries, so a dead channel is seen."""
    st.subheader("Notification deliveries")
    if not attempts:
        st.caption("No notifications sent yet.")
        return
    failed = sum(1 for attempt in attempts if not attempt["ok"])
    if failed:
        st.warning(f"{failed} of the last {len(attempts)} delivery attempts failed (each is retried with backoff).")
    frame = pd.DataFrame(
        [
            {
                "Time (UTC)": attempt["time"][:19].replace("T", " "),
                "Rule": attempt["rule_id"],
                "Channel": f"{attempt['channel_type']} ({attempt['channel_host']})",
                "Attempt": attempt["attempt"],
                "Delivered": "yes" if attempt["ok"] else "no",
                "Error": attempt["error"] or "",
            }
            for attempt in attempts
        ]
    )
    st.dataframe(frame, hide_index=True, width="stretch")
