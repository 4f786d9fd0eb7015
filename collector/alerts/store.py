"""Alert rules, their state and their events, in the collector's database."""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import datetime
from typing import Any, NamedTuple

from collector.alerts.rules import Enforce, Rule, masked, with_stored_urls
from collector.store.file import Store

_RULE_COLUMNS = (
    'id, name, metric, "window", op, threshold, for_seconds, filters, channels, enabled, min_requests, enforce, '
    "created_at, updated_at"
)
_RULE_WIDTH = len(_RULE_COLUMNS.split(","))


class Undelivered(NamedTuple):
    event_id: int
    rule_id: int
    rule: Rule
    state: str
    value: float | None
    time: datetime
    claimed_by: str
    claimed_at: datetime


_RULE_COLUMNS_OF_R = ", ".join("r." + column.strip() for column in _RULE_COLUMNS.split(","))


def _rule_from_row(row: tuple[Any, ...]) -> tuple[int, Rule, datetime, datetime]:
    (rule_id, name, metric, window, op, threshold, for_seconds, filters, channels, enabled, min_requests, enforce,
     created, updated) = row  # fmt: skip
    rule = Rule(name, metric, window, op, threshold, for_seconds, json.loads(filters), json.loads(channels), enabled,
                min_requests, Enforce(**json.loads(enforce)) if enforce else None)  # fmt: skip
    return rule_id, rule, created, updated


class AlertStore:
    def __init__(self, store: Store) -> None:
        self.store = store

    def create(self, rule: Rule, now: datetime) -> int:
        """Store a new rule; raises RuleError for a masked channel URL (it stands for nothing yet)."""
        rule = with_stored_urls(rule, [])
        with self.store.transaction() as con:
            rule_id = self.store.next_id(con, "alert_rule_ids")
            con.execute(
                'INSERT INTO alert_rules (id, name, metric, "window", op, threshold, for_seconds, filters, channels, '
                "enabled, min_requests, enforce, created_at, updated_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [rule_id, *_values(rule), now, now],
            )
        return rule_id

    def update(self, rule_id: int, rule: Rule, now: datetime) -> bool:
        """Replace a rule; channels sent back masked keep their stored URLs (RuleError when one can't)."""
        with self.store.transaction() as con:
            stored = con.execute("SELECT channels FROM alert_rules WHERE id = ?", [rule_id]).fetchone()
            if stored is None:
                return False
            rule = with_stored_urls(rule, json.loads(stored[0]))
            (found,) = con.execute(
                'UPDATE alert_rules SET name = ?, metric = ?, "window" = ?, op = ?, threshold = ?, for_seconds = ?, '
                "filters = ?, channels = ?, enabled = ?, min_requests = ?, enforce = ?, updated_at = ? WHERE id = ?",
                [*_values(rule), now, rule_id],
            ).fetchone()
            # A changed rule starts again from ok: its old state described another condition.
            con.execute("DELETE FROM alert_state WHERE rule_id = ?", [rule_id])
        return bool(found)

    def delete(self, rule_id: int) -> bool:
        with self.store.transaction() as con:
            (found,) = con.execute("DELETE FROM alert_rules WHERE id = ?", [rule_id]).fetchone()
            con.execute("DELETE FROM alert_state WHERE rule_id = ?", [rule_id])
        return bool(found)

    def rules(self, con: Any) -> list[tuple[int, Rule]]:
        rows = con.execute(f"SELECT {_RULE_COLUMNS} FROM alert_rules ORDER BY id").fetchall()
        return [(rule_id, rule) for rule_id, rule, _created, _updated in map(_rule_from_row, rows)]

    def shown(self, con: Any, rule_id: int | None = None) -> list[dict[str, Any]]:
        """Rules as the API returns them: channel URLs masked, with current state and value."""
        where = " WHERE r.id = ?" if rule_id is not None else ""
        rows = con.execute(
            f"SELECT {_RULE_COLUMNS_OF_R}, s.state, s.value, s.since "
            f"FROM alert_rules r LEFT JOIN alert_state s ON s.rule_id = r.id{where} ORDER BY r.id",
            [rule_id] if rule_id is not None else [],
        ).fetchall()
        shown = []
        for row in rows:
            rule_id_, rule, created, updated = _rule_from_row(row[:_RULE_WIDTH])
            state, value, since = row[_RULE_WIDTH:]
            item = asdict(rule)
            item["for"] = f"{rule.for_seconds}s" if rule.for_seconds else None
            del item["for_seconds"]
            item.update(id=rule_id_, channels=masked(rule.channels), state=state or "ok", value=value)
            item.update(state_since=since.isoformat() if since else None, created_at=created.isoformat(),
                        updated_at=updated.isoformat())  # fmt: skip
            shown.append(item)
        return shown

    def state(self, con: Any, rule_id: int) -> tuple[str, datetime | None]:
        row = con.execute("SELECT state, since FROM alert_state WHERE rule_id = ?", [rule_id]).fetchone()
        return (row[0], row[1]) if row else ("ok", None)

    def record(
        self, rule_id: int, rule: Rule, previous: str, state: str, since: datetime, value: float | None,
        requests: int, now: datetime, event: str | None, *, claimed_by: str | None = None,
    ) -> int | None:  # fmt: skip
        """Save the rule's state, and an event row (to `event`) when it changed; returns the event's id. With
        `claimed_by`, the event is claimed for delivery by that process, in the same transaction.

        Nothing is saved, and None returned, when the rule no longer reads as `rule` (edited, disabled or deleted
        meanwhile) or its stored state is no longer `previous` (on a lake, another collector became the leader and
        evaluated it first): that change stands, so a transition is recorded, and notified, once. (Two that get here
        at once on a lake: PostgreSQL's repeatable read fails the second at its write.)
        """
        with self.store.transaction() as con:
            stored = con.execute(f"SELECT {_RULE_COLUMNS} FROM alert_rules WHERE id = ?", [rule_id]).fetchone()
            if stored is None or _rule_from_row(stored)[1] != rule or self.state(con, rule_id)[0] != previous:
                return None
            con.execute(
                "INSERT INTO alert_state VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (rule_id) DO UPDATE SET "
                "state = EXCLUDED.state, since = EXCLUDED.since, value = EXCLUDED.value, "
                "requests = EXCLUDED.requests, evaluated_at = EXCLUDED.evaluated_at",
                [rule_id, state, since, value, requests, now],
            )
            if event is None:
                return None
            event_id = self.store.next_id(con, "alert_event_ids")
            con.execute(
                "INSERT INTO alert_events (id, rule_id, occurred_at, from_state, to_state, value, threshold) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                [event_id, rule_id, now, previous, event, value, rule.threshold],
            )
            if claimed_by is not None:
                con.execute("INSERT INTO notification_claims VALUES (?, ?, ?)", [event_id, claimed_by, now])
        return event_id

    def take_over(self, event: Undelivered, claimed_by: str, now: datetime) -> bool:
        """Claim an undelivered event from the process that claimed it; False if another process got there first
        (on a lake, the second of two at once fails at its write instead)."""
        with self.store.transaction() as con:
            (changed,) = con.execute(
                "UPDATE notification_claims SET claimed_by = ?, claimed_at = ? "
                "WHERE event_id = ? AND claimed_by = ? AND claimed_at = ?",
                [claimed_by, now, event.event_id, event.claimed_by, event.claimed_at],
            ).fetchone()
        return bool(changed)

    def undelivered(self, con: Any, since: datetime, claimed_before: datetime) -> list[Undelivered]:
        """Events since `since`, of enabled rules with channels, claimed for delivery before `claimed_before` and
        with no delivery attempt recorded."""
        rows = con.execute(
            f"SELECT e.id, e.to_state, e.value, e.occurred_at, c.claimed_by, c.claimed_at, {_RULE_COLUMNS_OF_R} "
            "FROM alert_events e JOIN notification_claims c ON c.event_id = e.id "
            "JOIN alert_rules r ON r.id = e.rule_id "
            "WHERE e.occurred_at >= ? AND c.claimed_at <= ? AND r.enabled AND r.channels <> '[]' "
            "AND NOT EXISTS (SELECT 1 FROM notification_attempts a WHERE a.event_id = e.id) ORDER BY e.id",
            [since, claimed_before],
        ).fetchall()
        found = []
        for event_id, state, value, occurred, claimed_by, claimed_at, *rule_row in rows:
            rule_id, rule, _created, _updated = _rule_from_row(tuple(rule_row))
            found.append(Undelivered(event_id, rule_id, rule, state, value, occurred, claimed_by, claimed_at))
        return found

    def events(self, con: Any, limit: int = 100, rule_id: int | None = None) -> list[dict[str, Any]]:
        where = " WHERE rule_id = ?" if rule_id is not None else ""
        rows = con.execute(
            "SELECT id, rule_id, occurred_at, from_state, to_state, value, threshold FROM alert_events"
            f"{where} ORDER BY occurred_at DESC, id DESC LIMIT ?",
            [*([rule_id] if rule_id is not None else []), limit],
        ).fetchall()
        names = ("id", "rule_id", "time", "from_state", "to_state", "value", "threshold")
        return [{**dict(zip(names, row, strict=True)), "time": row[2].isoformat()} for row in rows]


def _values(rule: Rule) -> list[Any]:
    enforce = json.dumps(asdict(rule.enforce), sort_keys=True) if rule.enforce is not None else None
    return [rule.name, rule.metric, rule.window, rule.op, rule.threshold, rule.for_seconds,
            json.dumps(rule.filters, sort_keys=True), json.dumps(rule.channels), rule.enabled,
            rule.min_requests, enforce]  # fmt: skip
