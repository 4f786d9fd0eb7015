"""Silences: mute a rule, one group of a rule, or every rule and group matching filters, until a time.

A muted transition is still recorded (its event row is marked silenced, with the silence's id) but not sent. A rule
or group whose firing was muted stays quiet when it resolves, even after the silence ended: a channel is never told
that something it never heard of is over.

Filters match the way a person reads them: `{"team": ["search"]}` mutes every rule whose own team filter lies
within those values, and the `team=search` group of every rule grouped by team.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from collector.alerts.rules import FILTERS, GROUP_BY, Rule, RuleError
from collector.query.filters import QueryError, parse_time
from collector.store.file import Store

SILENCE_FIELDS = frozenset({"rule_id", "group", "filters", "ends_at", "created_by", "reason"})
MAX_TEXT = 500


class SilenceError(RuleError):
    """An invalid silence: which field, and why (answered 422 like a rule's)."""


@dataclass(frozen=True)
class Silence:
    rule_id: int | None
    group: str | None
    filters: dict[str, list[str]] = field(default_factory=dict)
    ends_at: datetime | None = None
    created_by: str = ""
    reason: str = ""

    def mutes(self, rule_id: int, rule: Rule, group: str) -> bool:
        """Whether this silence mutes the rule's `group` ('' for a rule without group_by)."""
        if self.rule_id is not None and self.rule_id != rule_id:
            return False
        if self.group is not None and self.group != group:
            return False
        for name, values in self.filters.items():
            own = rule.filters.get(name)
            by_group = rule.group_by == name and group in values
            if not by_group and not (own and set(own) <= set(values)):
                return False
        return True


def parse_silence(payload: Any, now: datetime) -> Silence:
    """A `Silence` from the API's JSON, or `SilenceError` naming the first field that is wrong."""
    if not isinstance(payload, Mapping):
        raise SilenceError("body", "must be a JSON object")
    if unknown := set(payload) - SILENCE_FIELDS:
        raise SilenceError(sorted(unknown)[0], "is not a silence field")
    rule_id = payload.get("rule_id")
    if rule_id is not None and (isinstance(rule_id, bool) or not isinstance(rule_id, int) or rule_id < 1):
        raise SilenceError("rule_id", "must be a rule id")
    group = payload.get("group")
    if group is not None and (not isinstance(group, str) or not group or len(group) > MAX_TEXT):
        raise SilenceError("group", "must be one group's value, like the rule's groups show it")
    if group is not None and rule_id is None:
        raise SilenceError("group", "a group is a group of one rule: give its rule_id too")
    filters = _filters(payload.get("filters"))
    if rule_id is None and not filters:
        raise SilenceError("filters", "say what to mute: a rule_id, or filters (a silence of everything is refused)")
    ends_text = payload.get("ends_at")
    if not isinstance(ends_text, str):
        raise SilenceError("ends_at", "is required: an RFC 3339 time")
    try:
        ends_at = parse_time("ends_at", ends_text)
    except QueryError as exc:
        raise SilenceError("ends_at", exc.message) from None
    if ends_at <= now:
        raise SilenceError("ends_at", "must be in the future")
    return Silence(rule_id, group, filters, ends_at, _text(payload, "created_by"), _text(payload, "reason"))


def _text(payload: Mapping[str, Any], name: str) -> str:
    value = payload.get(name)
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_TEXT:
        raise SilenceError(name, f"is required: who and why, in at most {MAX_TEXT} characters")
    return value.strip()


def _filters(value: Any) -> dict[str, list[str]]:
    if value in (None, {}):
        return {}
    names = sorted(set(FILTERS) | set(GROUP_BY))
    if not isinstance(value, Mapping) or not all(name in names for name in value):
        raise SilenceError("filters", f'must be an object like {{"team": ["search"]}} of {", ".join(names)}')
    filters = {}
    for name, values in value.items():
        values = [values] if isinstance(values, str) else values
        if not isinstance(values, list) or not values or not all(isinstance(v, str) and v for v in values):
            raise SilenceError("filters", f"{name} must be a string or a list of strings")
        filters[name] = values
    return filters


class SilenceStore:
    """Silences in the collector's database (`alert_silences`)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def create(self, silence: Silence, now: datetime) -> int:
        with self.store.transaction() as con:
            silence_id = self.store.next_id(con, "alert_silence_ids")
            con.execute(
                "INSERT INTO alert_silences (id, rule_id, group_value, filters, ends_at, created_by, reason, "
                "created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [silence_id, silence.rule_id, silence.group, json.dumps(silence.filters, sort_keys=True),
                 silence.ends_at, silence.created_by, silence.reason, now],
            )  # fmt: skip
        return silence_id

    def delete(self, silence_id: int) -> bool:
        """End a silence now (its muted events keep saying they were muted, and by which silence id)."""
        with self.store.transaction() as con:
            (found,) = con.execute("DELETE FROM alert_silences WHERE id = ?", [silence_id]).fetchone()
        return bool(found)

    def active(self, con: Any, now: datetime) -> list[tuple[int, Silence]]:
        rows = con.execute(
            "SELECT id, rule_id, group_value, filters, ends_at, created_by, reason FROM alert_silences "
            "WHERE ends_at > ? ORDER BY id",
            [now],
        ).fetchall()
        return [(row[0], Silence(row[1], row[2], json.loads(row[3]), *row[4:])) for row in rows]

    def shown(self, con: Any, now: datetime) -> list[dict[str, Any]]:
        """Every silence, newest first, with whether it is still active."""
        rows = con.execute(
            "SELECT id, rule_id, group_value, filters, ends_at, created_by, reason, created_at FROM alert_silences "
            "ORDER BY id DESC"
        ).fetchall()
        names = ("id", "rule_id", "group", "filters", "ends_at", "created_by", "reason", "created_at")
        shown = []
        for row in rows:
            item = dict(zip(names, row, strict=True))
            item.update(filters=json.loads(row[3]), ends_at=row[4].isoformat(), created_at=row[7].isoformat(),
                        active=row[4] > now)  # fmt: skip
            shown.append(item)
        return shown


def muting(silences: list[tuple[int, Silence]], rule_id: int, rule: Rule, group: str) -> int | None:
    """The id of the first active silence that mutes the rule's group, or None."""
    return next((silence_id for silence_id, silence in silences if silence.mutes(rule_id, rule, group)), None)
