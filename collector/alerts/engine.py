"""Evaluating alert rules on the collector, every `--alert-interval` seconds, whether or not anyone watches.

A rule moves ok → pending (condition true) → firing (true for `for`) → resolved (false again) → ok; a
pending rule whose condition turns false goes back to ok. Every change is an event row with its value.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from collector.alerts.notify import Notice, Notifier
from collector.alerts.rules import ROLLING_WINDOWS, Rule
from collector.alerts.store import AlertStore
from collector.query.filters import METRICS, SERIES_ONLY_METRICS, Filters
from collector.reconcile.compare import gap_pct
from collector.schedule import Periodic
from collector.store.file import Store

log = logging.getLogger("llmledger.collector")
NOTIFIED = ("firing", "resolved")  # never "pending": one notification when it fires, one when it ends
# An event whose claim is this old without any delivery attempt (a first attempt records within the notifier's 10 s
# timeout) was left by a collector that died first: the leader, or this collector restarted, takes it over.
RESEND_AFTER = timedelta(minutes=1)
RESEND_WITHIN = timedelta(hours=1)  # older ones would be news of the past

_SQL = {
    "cost": METRICS["cost_usd"],
    "error_rate": METRICS["error_rate"],
    "errors": METRICS["errors"],
    "requests": METRICS["requests"],
    "latency_p95_ms": METRICS["latency_p95_ms"],
    "latency_p99_ms": METRICS["latency_p99_ms"],
    "ttft_p95_ms": METRICS["ttft_p95_ms"],
    "ratelimit_headroom_requests_pct": SERIES_ONLY_METRICS["ratelimit_headroom_requests_pct"],
    "ratelimit_headroom_tokens_pct": SERIES_ONLY_METRICS["ratelimit_headroom_tokens_pct"],
    "cost_forecast_month": METRICS["cost_usd"],
    "unpriced_requests": METRICS["unpriced_requests"],
}


def month_bounds(now: datetime) -> tuple[datetime, datetime]:
    start = datetime(now.year, now.month, 1, tzinfo=UTC)
    end = datetime(now.year + (now.month == 12), now.month % 12 + 1, 1, tzinfo=UTC)
    return start, end


def window_bounds(window: str, now: datetime) -> tuple[datetime, datetime]:
    """[start, end) of a rule's window at `now`; calendar windows are UTC days and months so far."""
    if window in ROLLING_WINDOWS:
        return now - ROLLING_WINDOWS[window], now
    if window == "day":
        return datetime(now.year, now.month, now.day, tzinfo=UTC), now
    return month_bounds(now)[0], now


def measure(con: Any, rule: Rule, now: datetime) -> tuple[float | None, int]:
    """The rule's metric over its window and filters at `now`, and how many calls that covered."""
    start, end = window_bounds(rule.window, now)
    if rule.metric == "reconciliation_gap_pct":
        return gap_pct(con, start, end)
    equals = {name: values for name, values in rule.filters.items() if name != "model"}
    filters = Filters(start=start, end=end, equals=equals, models=rule.filters.get("model", []))
    where, params = filters.where()
    value, requests = con.execute(f"SELECT {_SQL[rule.metric]}, count(*) FROM llm_calls{where}", params).fetchone()
    value = None if value is None else float(value)
    if rule.metric == "cost_forecast_month" and value is not None:
        month_start, month_end = month_bounds(now)
        elapsed = max((now - month_start) / (month_end - month_start), 1e-9)
        value = value / elapsed
    return value, requests


def next_state(
    state: str, since: datetime | None, holds: bool, for_seconds: int, now: datetime
) -> tuple[str, datetime, str | None]:
    """(new state, since when, the event's to-state or None): the rule's state machine, pure."""
    if holds:
        if state == "firing":
            return "firing", since or now, None
        if state == "pending":
            started = since or now
            if now - started >= timedelta(seconds=for_seconds):
                return "firing", now, "firing"
            return "pending", started, None
        if for_seconds == 0:
            return "firing", now, "firing"
        return "pending", now, "pending"
    if state == "firing":
        return "ok", now, "resolved"
    if state == "pending":
        return "ok", now, "ok"
    return "ok", since or now, None


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
        """Evaluate every enabled rule at `now`; returns the (rule id, event) changes made."""
        changes = []
        for rule_id, rule in self.alerts.rules(con):
            if not rule.enabled:
                continue
            try:
                value, requests = measure(con, rule, now)
                holds = requests >= rule.min_requests and rule.holds(value)
                state, since = self.alerts.state(con, rule_id)
                new_state, new_since, event = next_state(state, since, holds, rule.for_seconds, now)
                claim = self.identity if event in NOTIFIED and self.notifier is not None else None
                event_id = self.alerts.record(
                    rule_id, rule, state, new_state, new_since, value, requests, now, event, claimed_by=claim
                )
                if event is None or event_id is None:
                    continue
                changes.append((rule_id, event))
                if claim is not None and self.notifier is not None:  # (the second test is for the type checker)
                    self.notifier.send(Notice(event_id, rule_id, rule, event, value, now, claim))
            except Exception:  # one broken rule never stops the others
                log.exception("evaluating alert rule %d failed", rule_id)
        self.send_undelivered(con, now)
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
                event.event_id, event.rule_id, event.rule, event.state, event.value, event.time, self.identity
            )
            self.notifier.send(notice)
            sent.append(event.event_id)
        return sent


def preview(con: Any, rule: Rule, now: datetime, days: int = 7) -> dict[str, Any]:
    """The rule replayed hour by hour over the last `days`: its value, and when it would have fired."""
    points, fired_at = [], []
    state, since = "ok", None
    start = now.replace(minute=0, second=0, microsecond=0) - timedelta(days=days)
    steps = [start + timedelta(hours=hour) for hour in range(days * 24 + 1)]
    steps = [at for at in steps if at < now] + [now]  # hourly, and the present moment last
    for at in steps:
        value, requests = measure(con, rule, at)
        holds = requests >= rule.min_requests and rule.holds(value)
        state, since, event = next_state(state, since, holds, rule.for_seconds, at)
        if event == "firing":
            fired_at.append(at.isoformat())
        points.append({"time": at.isoformat(), "value": value, "requests": requests, "state": state})
    return {"points": points, "fired_at": fired_at, "step": "1h"}
