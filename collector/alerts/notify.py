"""Alert notifications to the rule's channels (collector/alerts/channels/), on firing and on resolve only.

Deliveries run on their own small pool, so a slow or dead channel never holds up evaluation. Each
failed attempt is retried with exponential backoff and jitter, and every attempt is recorded.
"""

from __future__ import annotations

import hashlib
import logging
import random
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from collector.alerts import channels
from collector.alerts.channels import Message
from collector.alerts.rules import Rule
from collector.store.file import Store

log = logging.getLogger("llmledger.collector")


@dataclass(frozen=True)
class Notice:
    """One state change of one rule, as the channels are told it."""

    event_id: int
    rule_id: int
    rule: Rule
    state: str  # "firing", "resolved", or "test" (sent from the UI; event_id 0)
    value: float | None
    time: datetime
    claimed_by: str | None = None  # the process whose claim on the event's delivery this is (alert_engine.py)
    group: tuple[str, str] | None = None  # (dimension, value) of a rule with group_by: whose state changed
    severity: str = "critical"  # "warning" or "critical": the threshold crossed (resolved: the one that had fired)
    bound: float | None = None  # the bound judged against (an anomaly band's edge); None: the severity's threshold
    groups_left_out: int = 0  # groups of a grouped rule past its cap (max_groups) at this evaluation

    @property
    def title(self) -> str:
        """The rule's name, and the group whose state changed (`High spend [team=search]`)."""
        return self.rule.name + (f" [{self.group[0]}={self.group[1]}]" if self.group else "")

    def payload(self, dashboard_url: str) -> dict[str, Any]:
        query = urlencode([(key, value) for key, values in self.rule.filters.items() for value in values])
        return {
            "rule": self.rule.name,
            "rule_id": self.rule_id,
            "state": self.state,
            "severity": self.severity,
            "group": dict([self.group]) if self.group else None,
            "title": self.title,
            "metric": self.rule.metric,
            "value": self.value,
            "op": self.rule.op,
            "threshold": self.rule.threshold_of(self.severity) if self.bound is None else self.bound,
            "groups_left_out": self.groups_left_out,
            "window": self.rule.window,
            "filters": self.rule.filters,
            "time": self.time.isoformat(),
            "link": f"{dashboard_url.rstrip('/')}/alerts" + (f"?{query}" if query else ""),
        }

    def message(self, dashboard_url: str) -> Message:
        """The notice as every channel is told it (the generic webhook's JSON is `payload`)."""
        payload = self.payload(dashboard_url)
        value = "no data" if self.value is None else f"{self.value:,.6g}"
        group = f"{self.group[0]}={self.group[1]}" if self.group else None
        filters = [f"{key}={'|'.join(values)}" for key, values in self.rule.filters.items()]
        where = ", ".join([group] * bool(group) + filters) or "all calls"
        threshold = f"{self.rule.op} {self.rule.threshold:g}"
        facts = [("Severity", self.severity), ("Metric", f"{self.rule.metric} over {self.rule.window}"),
                 ("Value", value), ("Threshold", threshold), ("Group", group), ("Filters", ", ".join(filters)),
                 ("Time", self.time.isoformat())]  # fmt: skip
        return Message(
            title=self.title,
            summary=f"{self.rule.metric} over {self.rule.window} is {value} ({threshold}) for {where}.",
            state=self.state,
            severity="info" if self.state == "test" else self.severity,
            link=payload["link"],
            facts=tuple((name, text) for name, text in facts if text),
            data=payload,
            dedup_key=dedup_key(self.rule_id, self.group, test=self.state == "test"),
            source=where,
        )


MAX_DEDUP_KEY = 255  # PagerDuty's limit


def dedup_key(rule_id: int, group: tuple[str, str] | None, *, test: bool = False) -> str:
    """The same key for every notice of one rule and group (`llmledger-rule-7-team=search`), so a resolve closes
    what the firing opened; a group too long for the limit is hashed. A test has its own key: it never closes a
    real alert."""
    key = f"llmledger-rule-{rule_id}" + (f"-{group[0]}={group[1]}" if group else "") + ("-test" if test else "")
    if len(key) <= MAX_DEDUP_KEY:
        return key
    digest = hashlib.sha256(f"{group[0]}={group[1]}".encode()).hexdigest() if group else ""
    return f"llmledger-rule-{rule_id}-{group[0] if group else ''}-{digest}" + ("-test" if test else "")


class Notifier:
    def __init__(
        self, store: Store, dashboard_url: str, *, attempts: int = 5, base_delay_s: float = 1.0, timeout_s: float = 10
    ) -> None:
        self.store = store
        self.dashboard_url = dashboard_url
        self.attempts = attempts
        self.base_delay_s = base_delay_s
        self.timeout_s = timeout_s
        self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="llmledger-notify")
        self._closed = threading.Event()

    def send(self, notice: Notice) -> None:
        """Queue a delivery to every channel of the rule (returns at once)."""
        for channel in notice.rule.channels:
            self._pool.submit(self._deliver, notice, channel)

    def close(self, wait: bool = True) -> None:
        """Stop: deliveries not yet begun or waiting to retry give up (the database is about to close); with `wait`,
        an attempt under way finishes (at most `timeout_s`) and is recorded, so no one sends it again."""
        self._closed.set()
        self._pool.shutdown(wait=wait, cancel_futures=True)

    def _deliver(self, notice: Notice, channel: dict[str, Any]) -> bool:
        message = notice.message(self.dashboard_url)
        if notice.claimed_by is not None and not self._still_claimed(notice):
            log.info("alert event %d: another collector took over its delivery", notice.event_id)
            return False
        for attempt in range(1, self.attempts + 1):
            if self._closed.is_set():
                return False
            try:
                ok, status, error = channels.deliver(channel, message, self.timeout_s)
            except Exception as exc:  # noqa: BLE001
                # A channel's bug: recorded and retried; its text is not logged, as it may hold the secret.
                ok, status, error = False, None, type(exc).__name__
                log.error("the %s channel failed with %s", channel["type"], type(exc).__name__)
            self._record(notice, channel, attempt, ok, status, error)  # even when closing: it was sent
            if ok:
                return True
            if attempt < self.attempts:
                # Exponential backoff with full jitter, so many failing channels don't retry in step.
                self._closed.wait(random.uniform(0, self.base_delay_s * 2 ** (attempt - 1)))
        log.warning("notification for rule %d to %s failed after %d attempts", notice.rule_id, channel["type"],
                    self.attempts)  # fmt: skip
        return False

    def _still_claimed(self, notice: Notice) -> bool:
        """Renew this process's claim on the event right before sending; False if another process took it over (a
        queue backed up past the take-over time, on a collector that lost the lead meanwhile)."""
        try:
            with self.store.transaction() as con:
                (renewed,) = con.execute(
                    "UPDATE notification_claims SET claimed_at = ? WHERE event_id = ? AND claimed_by = ?",
                    [datetime.now(tz=UTC), notice.event_id, notice.claimed_by],
                ).fetchone()
        except Exception:  # the claim can't be checked: sending beats staying silent
            log.exception("could not renew the claim on alert event %d", notice.event_id)
            return True
        return bool(renewed)

    def _record(
        self, notice: Notice, channel: dict[str, Any], attempt: int, ok: bool, status: int | None, error: str | None
    ) -> None:
        try:
            with self.store.transaction() as con:
                con.execute(
                    "INSERT INTO notification_attempts (event_id, rule_id, channel_type, channel_host, attempt, "
                    "attempted_at, ok, http_status, error) VALUES (?, ?, ?, ?, ?, now(), ?, ?, ?)",
                    [notice.event_id, notice.rule_id, channel["type"], channels.host(channel), attempt,
                     ok, status, error],
                )  # fmt: skip
        except Exception:  # recording must never stop a delivery
            log.exception("could not record a notification attempt")


def attempts(con: Any, limit: int = 100) -> list[dict[str, Any]]:
    """The latest delivery attempts (never the channel's secret URL or key, only its server's host)."""
    rows = con.execute(
        "SELECT id, event_id, rule_id, channel_type, channel_host, attempt, attempted_at, ok, http_status, error "
        "FROM notification_attempts ORDER BY attempted_at DESC, id DESC LIMIT ?",
        [limit],
    ).fetchall()
    names = ("id", "event_id", "rule_id", "channel_type", "channel_host", "attempt", "time", "ok", "http_status",
             "error")  # fmt: skip
    return [{**dict(zip(names, row, strict=True)), "time": row[6].isoformat()} for row in rows]
