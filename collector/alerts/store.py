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
    "kind, group_by, max_groups, warning_threshold, baseline, sensitivity, created_at, updated_at"
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
    group: tuple[str, str] | None = None
    severity: str = "critical"
    groups_left_out: int = 0
    threshold: float | None = None


class GroupState(NamedTuple):
    """A group's stored state; `silenced`: the event that began it was muted (so its end is not sent either)."""

    state: str
    severity: str | None
    since: datetime | None
    event_id: int | None
    silenced: bool


class AckError(ValueError):
    """An acknowledgement of an event that isn't a firing alert."""


_RULE_COLUMNS_OF_R = ", ".join("r." + column.strip() for column in _RULE_COLUMNS.split(","))


def _rule_from_row(row: tuple[Any, ...]) -> tuple[int, Rule, datetime, datetime]:
    (rule_id, name, metric, window, op, threshold, for_seconds, filters, channels, enabled, min_requests, enforce,
     kind, group_by, max_groups, warning_threshold, baseline, sensitivity, created, updated) = row  # fmt: skip
    rule = Rule(name, metric, window, op, threshold, for_seconds, json.loads(filters), json.loads(channels), enabled,
                min_requests, Enforce(**json.loads(enforce)) if enforce else None, kind, group_by, max_groups,
                warning_threshold, baseline, sensitivity)  # fmt: skip
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
                "enabled, min_requests, enforce, kind, group_by, max_groups, warning_threshold, baseline, sensitivity, "
                "created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
                "filters = ?, channels = ?, enabled = ?, min_requests = ?, enforce = ?, kind = ?, group_by = ?, "
                "max_groups = ?, warning_threshold = ?, baseline = ?, sensitivity = ?, updated_at = ? WHERE id = ?",
                [*_values(rule), now, rule_id],
            ).fetchone()
            # A changed rule starts again from ok: its old state described another condition.
            con.execute("DELETE FROM alert_state WHERE rule_id = ?", [rule_id])
            con.execute("DELETE FROM alert_group_counts WHERE rule_id = ?", [rule_id])
        return bool(found)

    def delete(self, rule_id: int) -> bool:
        with self.store.transaction() as con:
            (found,) = con.execute("DELETE FROM alert_rules WHERE id = ?", [rule_id]).fetchone()
            con.execute("DELETE FROM alert_state WHERE rule_id = ?", [rule_id])
            con.execute("DELETE FROM alert_group_counts WHERE rule_id = ?", [rule_id])
        return bool(found)

    def rules(self, con: Any) -> list[tuple[int, Rule]]:
        rows = con.execute(f"SELECT {_RULE_COLUMNS} FROM alert_rules ORDER BY id").fetchall()
        return [(rule_id, rule) for rule_id, rule, _created, _updated in map(_rule_from_row, rows)]

    def shown(self, con: Any, rule_id: int | None = None) -> list[dict[str, Any]]:
        """Rules as the API returns them: channel URLs masked, with current state and value. A grouped rule shows the
        groups that are not ok, how many groups its last evaluation measured and how many its cap left out, and its
        state is its worst group's."""
        where, params = (" WHERE id = ?", [rule_id]) if rule_id is not None else ("", [])
        rows = con.execute(f"SELECT {_RULE_COLUMNS} FROM alert_rules{where} ORDER BY id", params).fetchall()
        where = where.replace("id", "rule_id")
        states: dict[int, list[tuple[Any, ...]]] = {}
        for row in con.execute(
            "SELECT rule_id, group_key, state, severity, value, since, acked_by, acked_at FROM alert_state"
            f"{where} ORDER BY rule_id, group_key",
            params,
        ).fetchall():
            states.setdefault(row[0], []).append(row[1:])
        counts = {row[0]: row[1:] for row in con.execute(f"SELECT * FROM alert_group_counts{where}", params).fetchall()}
        shown = []
        for row in rows:
            rule_id_, rule, created, updated = _rule_from_row(row)
            item = asdict(rule)
            item["for"] = f"{rule.for_seconds}s" if rule.for_seconds else None
            del item["for_seconds"]
            item.update(id=rule_id_, channels=masked(rule.channels), created_at=created.isoformat(),
                        updated_at=updated.isoformat())  # fmt: skip
            groups = [_shown_state(state) for state in states.get(rule_id_, [])]
            if rule.group_by is None:
                item.update(groups[0] if groups else _shown_state(("", "ok", None, None, None, None, None)))
                del item["group"]
            else:
                worst = max(groups, key=_urgency, default=None)
                item.update(state=worst["state"] if worst else "ok", severity=worst["severity"] if worst else None,
                            value=None, state_since=None, acked_by=None, acked_at=None)  # fmt: skip
                measured, left_out = counts.get(rule_id_, (None, 0, 0))[1:]
                item.update(groups=groups, groups_measured=measured, groups_left_out=left_out)
            shown.append(item)
        return shown

    def states(self, con: Any, rule_id: int) -> dict[str, GroupState]:
        """The rule's stored state per group ('' for a rule without group_by); a group not listed is ok."""
        rows = con.execute(
            "SELECT s.group_key, s.state, s.severity, s.since, s.event_id, coalesce(e.silenced, false) "
            "FROM alert_state s LEFT JOIN alert_events e ON e.id = s.event_id WHERE s.rule_id = ?",
            [rule_id],
        ).fetchall()
        return {row[0]: GroupState(*row[1:]) for row in rows}

    def state(self, con: Any, rule_id: int, group: str = "") -> tuple[str, datetime | None]:
        found = self.states(con, rule_id).get(group)
        return (found.state, found.since) if found else ("ok", None)

    def record(
        self, rule_id: int, rule: Rule, previous: str, state: str, since: datetime, value: float | None,
        requests: int, now: datetime, event: str | None, *, claimed_by: str | None = None, group: str = "",
        severity: str | None = None, previous_severity: str | None = None, threshold: float | None = None,
        silenced: bool = False, silence_id: int | None = None, groups_left_out: int = 0,
    ) -> int | None:  # fmt: skip
        """Save the state of the rule's `group` ('' for a rule without group_by), and an event row (to `event`, of
        `severity`) when it changed; returns the event's id. With `claimed_by`, the event is claimed for delivery by
        that process, in the same transaction; `silenced` (by `silence_id`, or because the firing it ends was), it is
        recorded as such and never claimed nor sent.

        Nothing is saved, and None returned, when the rule no longer reads as `rule` (edited, disabled or deleted
        meanwhile) or the group's stored state and severity are no longer `previous` and `previous_severity` (on a
        lake, another collector became the leader and evaluated it first): that change stands, so a transition is
        recorded, and notified, once. (Two that get here at once on a lake: PostgreSQL's repeatable read fails the
        second at its write.) A group of a grouped rule back to ok has no row: only groups with news are kept.
        """
        with self.store.transaction() as con:
            stored = con.execute(f"SELECT {_RULE_COLUMNS} FROM alert_rules WHERE id = ?", [rule_id]).fetchone()
            if stored is None or _rule_from_row(stored)[1] != rule:
                return None
            row = con.execute(
                "SELECT state, severity, event_id, acked_by, acked_at FROM alert_state "
                "WHERE rule_id = ? AND group_key = ?",
                [rule_id, group],
            ).fetchone()
            was = (row[0], row[1]) if row else ("ok", None)
            if was[0] != previous or (
                previous != "ok" and previous_severity is not None and was[1] != previous_severity
            ):
                return None
            event_id = None
            if event is not None:
                event_id = self.store.next_id(con, "alert_event_ids")
                con.execute(
                    "INSERT INTO alert_events (id, rule_id, occurred_at, from_state, to_state, value, threshold, "
                    "group_by, group_value, severity, from_severity, silenced, silence_id, groups_left_out) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [event_id, rule_id, now, previous, event, value,
                     rule.threshold_of(severity) if threshold is None else threshold,
                     rule.group_by if group else None, group or None, severity or "critical",
                     previous_severity if previous != "ok" else None, silenced, silence_id,
                     groups_left_out],
                )  # fmt: skip
                if claimed_by is not None and not silenced:
                    con.execute("INSERT INTO notification_claims VALUES (?, ?, ?)", [event_id, claimed_by, now])
            new_severity = (severity or "critical") if state != "ok" else None
            if rule.group_by is not None and state == "ok":
                con.execute("DELETE FROM alert_state WHERE rule_id = ? AND group_key = ?", [rule_id, group])
            elif row is None:
                con.execute(
                    "INSERT INTO alert_state (rule_id, group_key, state, severity, since, value, requests, "
                    "evaluated_at, event_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [rule_id, group, state, new_severity, since, value, requests, now, event_id],
                )
            else:
                # A new state or severity is news: it starts unacknowledged.
                kept = [row[2], row[3], row[4]] if event_id is None else [event_id, None, None]
                con.execute(
                    "UPDATE alert_state SET state = ?, severity = ?, since = ?, value = ?, requests = ?, "
                    "evaluated_at = ?, event_id = ?, acked_by = ?, acked_at = ? WHERE rule_id = ? AND group_key = ?",
                    [state, new_severity, since, value, requests, now, *kept, rule_id, group],
                )
        return event_id

    def record_group_counts(self, rule_id: int, now: datetime, measured: int, left_out: int) -> None:
        """A grouped rule's last evaluation: how many groups it measured, how many its cap left out."""
        with self.store.transaction() as con:
            (updated,) = con.execute(
                "UPDATE alert_group_counts SET evaluated_at = ?, groups = ?, groups_left_out = ? WHERE rule_id = ?",
                [now, measured, left_out, rule_id],
            ).fetchone()
            if not updated:
                con.execute("INSERT INTO alert_group_counts VALUES (?, ?, ?, ?)", [rule_id, now, measured, left_out])

    def acknowledge(self, event_id: int, by: str, now: datetime) -> dict[str, Any] | None:
        """Mark a firing event as seen by `by` (the first acknowledgement stands), and its group's state while that
        event is still the current one; returns the event as `events` shows it, None if there is none. Raises
        `AckError` for an event that isn't a firing one."""
        with self.store.transaction() as con:
            found = con.execute("SELECT to_state FROM alert_events WHERE id = ?", [event_id]).fetchone()
            if found is None:
                return None
            if found[0] != "firing":
                raise AckError(f"event {event_id} is a {found[0]!r} event: only a firing alert is acknowledged")
            con.execute(
                "UPDATE alert_events SET acked_by = ?, acked_at = ? WHERE id = ? AND acked_by IS NULL",
                [by, now, event_id],
            )
            con.execute(
                "UPDATE alert_state SET acked_by = ?, acked_at = ? WHERE event_id = ? AND acked_by IS NULL",
                [by, now, event_id],
            )
            return self.events(con, event_id=event_id)[0]

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
            f"SELECT e.id, e.to_state, e.value, e.occurred_at, c.claimed_by, c.claimed_at, e.group_by, e.group_value, "
            f"e.severity, e.groups_left_out, e.threshold, {_RULE_COLUMNS_OF_R} "
            "FROM alert_events e JOIN notification_claims c ON c.event_id = e.id "
            "JOIN alert_rules r ON r.id = e.rule_id "
            "WHERE e.occurred_at >= ? AND c.claimed_at <= ? AND r.enabled AND r.channels <> '[]' "
            "AND NOT EXISTS (SELECT 1 FROM notification_attempts a WHERE a.event_id = e.id) ORDER BY e.id",
            [since, claimed_before],
        ).fetchall()
        found = []
        for event_id, state, value, occurred, claimed_by, claimed_at, *rest in rows:
            group_by, group_value, severity, left_out, threshold, *rule_row = rest
            rule_id, rule, _created, _updated = _rule_from_row(tuple(rule_row))
            group = (group_by, group_value) if group_by is not None else None
            found.append(Undelivered(event_id, rule_id, rule, state, value, occurred, claimed_by, claimed_at, group,
                                     severity, left_out, threshold))  # fmt: skip
        return found

    def events(
        self, con: Any, limit: int = 100, rule_id: int | None = None, event_id: int | None = None
    ) -> list[dict[str, Any]]:
        """The latest events (or one), newest first: transitions of a rule or one of its groups, with their
        severity, whether a silence muted them and who acknowledged them."""
        clauses = [(column, value) for column, value in (("rule_id", rule_id), ("id", event_id)) if value is not None]
        where = (" WHERE " + " AND ".join(f"{column} = ?" for column, _ in clauses)) if clauses else ""
        rows = con.execute(
            f"SELECT {', '.join(_EVENT_COLUMNS)} FROM alert_events{where} ORDER BY occurred_at DESC, id DESC LIMIT ?",
            [*(value for _, value in clauses), limit],
        ).fetchall()
        shown = []
        for row in rows:
            item = dict(zip(_EVENT_NAMES, row, strict=True))
            group_by, group_value = item.pop("group_by"), item.pop("group_value")
            item["group"] = {group_by: group_value} if group_by is not None else None
            item["time"] = row[2].isoformat()
            item["acked_at"] = item["acked_at"].isoformat() if item["acked_at"] else None
            shown.append(item)
        return shown


_EVENT_COLUMNS = ("id", "rule_id", "occurred_at", "from_state", "to_state", "value", "threshold", "group_by",
                  "group_value", "severity", "from_severity", "silenced", "silence_id", "groups_left_out", "acked_by",
                  "acked_at")  # fmt: skip
_EVENT_NAMES = tuple("time" if column == "occurred_at" else column for column in _EVENT_COLUMNS)
_URGENCY = {"ok": 0, "pending": 1, "firing": 2}


def _shown_state(row: tuple[Any, ...]) -> dict[str, Any]:
    group, state, severity, value, since, acked_by, acked_at = row
    return {"group": group, "state": state, "severity": severity, "value": value,
            "state_since": since.isoformat() if since else None, "acked_by": acked_by,
            "acked_at": acked_at.isoformat() if acked_at else None}  # fmt: skip


def _urgency(shown: dict[str, Any]) -> tuple[int, bool]:
    return _URGENCY[shown["state"]], shown["severity"] == "critical"


def _values(rule: Rule) -> list[Any]:
    enforce = json.dumps(asdict(rule.enforce), sort_keys=True) if rule.enforce is not None else None
    return [rule.name, rule.metric, rule.window, rule.op, rule.threshold, rule.for_seconds,
            json.dumps(rule.filters, sort_keys=True), json.dumps(rule.channels), rule.enabled,
            rule.min_requests, enforce, rule.kind, rule.group_by, rule.max_groups, rule.warning_threshold,
            rule.baseline, rule.sensitivity]  # fmt: skip
