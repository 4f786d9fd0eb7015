"""Evaluating alert rules on the collector, every `--alert-interval` seconds, whether or not anyone watches.

Each group of a rule (the rule itself without group_by) moves ok → pending (its condition true) → firing (true for
`for`) → resolved (false again) → ok; a pending group whose condition turns false goes back to ok. A firing group
whose level changes between warning and critical stays firing: the escalation or de-escalation is one event (firing
→ firing, with the old and new severity), never a resolved/firing pair. Every change is an event row with its value.

A grouped rule holds at most `max_groups` groups in a non-ok state: groups already there are always evaluated (so
they can resolve); new ones are admitted critical first, then by rank (the metric's value in the direction the op
watches), and the rest are counted as left out.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from collector.alerts.notify import Notice, Notifier
from collector.alerts.readings import Reading, read
from collector.alerts.rules import Rule
from collector.alerts.silences import Silence, SilenceStore, muting
from collector.alerts.store import AlertStore, GroupState
from collector.schedule import Periodic
from collector.store.file import Store

log = logging.getLogger("llmledger.collector")
NOTIFIED = ("firing", "resolved")  # never "pending": one notification when it fires (or changes level), one at its end
# An event whose claim is this old without any delivery attempt (a first attempt records within the notifier's 10 s
# timeout) was left by a collector that died first: the leader, or this collector restarted, takes it over.
RESEND_AFTER = timedelta(minutes=1)
RESEND_WITHIN = timedelta(hours=1)  # older ones would be news of the past


@dataclass(frozen=True)
class Step:
    """A group's state after one evaluation; `event` is the event's to-state, or None when nothing changed."""

    state: str
    severity: str | None
    since: datetime
    event: str | None


def next_state(
    state: str, severity: str | None, since: datetime | None, level: str | None, for_seconds: int, now: datetime
) -> Step:
    """The state machine, pure: from the stored state and severity, and the level the group reaches now (None,
    "warning" or "critical")."""
    if level is not None:
        if state == "firing":
            if level == severity:
                return Step("firing", severity, since or now, None)
            return Step("firing", level, now, "firing")  # escalated or de-escalated
        if state == "pending":
            started = since or now
            if now - started >= timedelta(seconds=for_seconds):
                return Step("firing", level, now, "firing")
            return Step("pending", level, started, None)
        if for_seconds == 0:
            return Step("firing", level, now, "firing")
        return Step("pending", level, now, "pending")
    if state == "firing":
        return Step("ok", None, now, "resolved")
    if state == "pending":
        return Step("ok", None, now, "ok")
    return Step("ok", None, since or now, None)


def admitted(rule: Rule, readings: dict[str, Reading], states: dict[str, GroupState]) -> tuple[list[str], int]:
    """The groups to evaluate, and how many holding groups the cap left out (see the module's docstring)."""
    if rule.group_by is None:
        return [""], 0
    holding = sorted(group for group, stored in states.items() if stored.state != "ok")
    candidates = sorted(
        (group for group, reading in readings.items() if reading.level is not None and group not in holding),
        key=lambda group: (readings[group].level == "critical", readings[group].rank),
        reverse=True,
    )
    room = max(0, rule.max_groups - len(holding))
    return holding + candidates[:room], max(0, len(candidates) - room)


class AlertEngine:
    """Evaluates every enabled rule on its own thread; `evaluate_once` is what each tick does."""

    def __init__(
        self,
        store: Store,
        interval_s: float,
        notifier: Notifier | None = None,
    ) -> None:
        self.store = store
        self.alerts = AlertStore(store)
        self.silences = SilenceStore(store)
        self.notifier = notifier
        self.interval_s = interval_s
        # Who claims events for delivery: unique per process, so a restarted collector takes over its own old claims.
        self.identity = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._loop = Periodic("alerts", interval_s, self._tick, run_at_start=False, is_leader=store.leader_check)

    def start(self) -> None:
        self._loop.start()

    def stop(self) -> None:
        self._loop.stop(10)

    def _tick(self) -> None:
        con = self.store.reader()
        try:
            self.evaluate_once(con, datetime.now(tz=UTC))
        finally:
            con.close()

    def evaluate_once(self, con: Any, now: datetime) -> list[tuple[int, str]]:
        """Evaluate every enabled rule at `now`; returns the (rule id, event) changes made (one per group's)."""
        changes: list[tuple[int, str]] = []
        silences = self.silences.active(con, now)
        for rule_id, rule in self.alerts.rules(con):
            if not rule.enabled:
                continue
            try:
                changes += self._evaluate(con, rule_id, rule, now, silences)
            except Exception:  # one broken rule never stops the others
                log.exception("evaluating alert rule %d failed", rule_id)
        self.send_undelivered(con, now)
        return changes

    def _evaluate(
        self, con: Any, rule_id: int, rule: Rule, now: datetime, silences: list[tuple[int, Silence]]
    ) -> list[tuple[int, str]]:
        readings = read(con, rule, now)
        states = self.alerts.states(con, rule_id)
        groups, left_out = admitted(rule, readings, states)
        if rule.group_by is not None:
            self.alerts.record_group_counts(rule_id, now, len(readings), left_out)
        changes = []
        for group in groups:
            stored = states.get(group)
            state, severity, since = (stored.state, stored.severity, stored.since) if stored else ("ok", None, None)
            reading = readings.get(group)
            # No calls at all: a no-data rule's group unseen for long stays as it is; other rules have no value.
            level = reading.level if reading is not None else severity if rule.kind == "no_data" else None
            step = next_state(state, severity, since, level, rule.for_seconds, now)
            if step.event is None and step.state == "ok" and rule.group_by is not None:
                continue  # a quiet group keeps no row
            event_severity = step.severity if step.state != "ok" else severity
            silence_id = muting(silences, rule_id, rule, group) if step.event is not None else None
            # The end of a firing that was muted is muted too: its channels never heard of it.
            silenced = silence_id is not None or (step.event == "resolved" and stored is not None and stored.silenced)
            notify = step.event in NOTIFIED and self.notifier is not None and not silenced
            claim = self.identity if notify else None
            value = reading.value if reading is not None else None
            bound = reading.threshold if reading is not None and rule.kind != "threshold" else None
            event_id = self.alerts.record(
                rule_id, rule, state, step.state, step.since, value, reading.requests if reading else 0, now,
                step.event, claimed_by=claim, group=group, severity=event_severity, previous_severity=severity,
                threshold=bound, silenced=silenced, silence_id=silence_id, groups_left_out=left_out,
            )  # fmt: skip
            if step.event is None or event_id is None:
                continue
            changes.append((rule_id, step.event))
            if claim is not None and self.notifier is not None:  # (the second test is for the type checker)
                group_of = (rule.group_by, group) if rule.group_by is not None else None
                notice = Notice(event_id, rule_id, rule, step.event, value, now, claim, group_of,
                                event_severity or "critical", bound, left_out)  # fmt: skip
                self.notifier.send(notice)
        return changes

    def send_undelivered(self, con: Any, now: datetime) -> list[int]:
        """Deliver the events another collector (or this one before a restart) claimed but died before delivering;
        returns their ids. Each is taken over by one process only, and never from this one (its own attempts may
        have failed to record)."""
        if self.notifier is None:
            return []
        sent = []
        for event in self.alerts.undelivered(con, now - RESEND_WITHIN, now - RESEND_AFTER):
            if event.claimed_by == self.identity:
                continue
            try:
                if not self.alerts.take_over(event, self.identity, now):
                    continue
            except Exception:  # on a lake, another collector took it over at the same moment
                log.warning("alert event %d: another collector took over its delivery", event.event_id, exc_info=True)
                continue
            log.info("alert event %d was recorded but never delivered; delivering it now", event.event_id)
            notice = Notice(
                event.event_id,
                event.rule_id,
                event.rule,
                event.state,
                event.value,
                event.time,
                self.identity,
                event.group,
                event.severity,
                event.threshold if event.rule.kind != "threshold" else None,
                event.groups_left_out,
            )
            self.notifier.send(notice)
            sent.append(event.event_id)
        return sent
