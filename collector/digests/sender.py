"""Making and delivering digests: the schedule (every --alert-interval, on a lake the leader's), "send now", and
previews.

A scheduled report is delivered on the schedule's own thread, channel after channel, each with the alert
notifier's retries (exponential backoff with full jitter) and every attempt recorded; "send now" goes on a small
pool so the API answers at once. A report is made when it is delivered, from the period's data as stored then.
"""

from __future__ import annotations

import base64
import logging
import os
import random
import socket
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

from collector.alerts import channels
from collector.alerts.channels import Image, Message
from collector.alerts.store import AlertStore
from collector.digests import chart
from collector.digests.report import Report, build
from collector.digests.spec import Digest, Period, due, last_complete
from collector.digests.store import DigestStore, Send
from collector.schedule import Periodic
from collector.store.file import Store

log = logging.getLogger("llmledger.collector")
TICK_S = 15.0  # the default --alert-interval
# As for alert notifications: a claim this old without an attempt was left by a collector that died first.
RESEND_AFTER = timedelta(minutes=1)
RESEND_WITHIN = timedelta(days=1)


class Digests:
    """The collector's digests: `run_once` is what each tick of the schedule does (at an injected `now` in tests)."""

    def __init__(
        self, store: Store, dashboard_url: str, *, attempts: int = 5, base_delay_s: float = 1.0,
        timeout_s: float = 10.0, interval_s: float = TICK_S,
    ) -> None:  # fmt: skip
        self.store = store
        self.records = DigestStore(store)
        self.alerts = AlertStore(store)
        self.dashboard_url = dashboard_url
        self.attempts = attempts
        self.base_delay_s = base_delay_s
        self.timeout_s = timeout_s
        self.identity = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="llmledger-digest")
        self._closed = threading.Event()
        self._loop = Periodic("digests", interval_s, self._tick, is_leader=store.leader_check)

    def start(self) -> None:
        self._loop.start()

    def stop(self) -> None:
        self._closed.set()
        self._loop.stop(30)
        self._pool.shutdown(wait=True, cancel_futures=True)

    def _tick(self) -> None:
        con = self.store.reader()
        try:
            self.run_once(con, datetime.now(tz=UTC))
        finally:
            con.close()

    def run_once(self, con: Any, now: datetime) -> list[int]:
        """Send every digest whose report is due at `now` and not yet claimed, then any another collector claimed
        and died before delivering; returns the send ids delivered (or tried)."""
        sent = []
        for stored in self.records.digests(con):
            period = due(stored.digest, stored.last_period, now)
            if period is None:
                continue
            try:
                send_id = self.records.claim_scheduled(stored, period, self.identity, now)
            except Exception:  # on a lake, another collector claimed it at the same moment
                log.warning("digest %d: another collector claimed its report", stored.digest_id, exc_info=True)
                continue
            if send_id is None:
                continue
            self.deliver(Send(send_id, stored.digest_id, stored.digest, period, "schedule", self.identity, now), now)
            sent.append(send_id)
        return sent + self._take_over(con, now)

    def _take_over(self, con: Any, now: datetime) -> list[int]:
        sent = []
        for send in self.records.undelivered(con, now - RESEND_WITHIN, now - RESEND_AFTER):
            if send.claimed_by == self.identity:
                continue
            try:
                if not self.records.take_over(send, self.identity, now):
                    continue
            except Exception:
                log.warning("digest send %d: another collector took it over", send.send_id, exc_info=True)
                continue
            log.info("digest send %d was claimed but never delivered; delivering it now", send.send_id)
            self.deliver(send._replace(claimed_by=self.identity, claimed_at=now), now)
            sent.append(send.send_id)
        return sent

    def send_now(self, digest_id: int, digest: Digest, now: datetime) -> Send:
        """Record a send of the last complete period's report and deliver it in the background; the schedule is left
        as it was."""
        period = last_complete(digest.schedule, now)
        send_id = self.records.record_send_now(digest_id, period, self.identity, now)
        send = Send(send_id, digest_id, digest, period, "now", self.identity, now)
        self._pool.submit(self.deliver, send, now)
        return send

    def report(self, con: Any, digest: Digest, period: Period, now: datetime) -> Report:
        return build(con, digest, period, now, self.alerts.rules(con))

    def message(self, report: Report) -> Message:
        """The report as every channel is told it (e-mail shows the chart inline; chat channels the text)."""
        link = f"{self.dashboard_url.rstrip('/')}/alerts"
        return Message(
            title=report.digest.name,
            summary=report.summary(),
            state="report",
            severity="info",
            link=link,
            facts=(("Period", f"{report.period.label} (UTC)"), ("Filters", report.where)),
            body="\n".join(report.lines()),
            html=report.html(),
            image=Image(chart.png(report), chart.alt_text(report), "daily-cost.png"),
            data={"title": report.digest.name, "summary": report.summary(), "link": link, **report.as_json()},
        )

    def preview(self, con: Any, digest: Digest, now: datetime) -> dict[str, Any]:
        """The report a send now would deliver, not sent: its figures, its text and its chart (PNG, base64)."""
        report = self.report(con, digest, last_complete(digest.schedule, now), now)
        message = self.message(report)
        assert message.image is not None
        return {
            "report": report.as_json(),
            "text": message.plain_text(),
            "png_base64": base64.b64encode(message.image.png).decode("ascii"),
            "png_alt": message.image.alt,
        }

    def deliver(self, send: Send, now: datetime) -> bool:
        """Make the report and deliver it to each channel (retried, every attempt recorded); True when all took it."""
        if not self._still_claimed(send, now):
            log.info("digest send %d: another collector took over its delivery", send.send_id)
            return False
        con = self.store.reader()
        try:
            message = self.message(self.report(con, send.digest, send.period, now))
        finally:
            con.close()
        return all([self._to_channel(send, channel, message) for channel in send.digest.channels])

    def _still_claimed(self, send: Send, now: datetime) -> bool:
        try:
            return self.records.still_claimed(send, now)
        except Exception:  # the claim can't be checked: sending beats staying silent
            log.exception("could not renew the claim on digest send %d", send.send_id)
            return True

    def _to_channel(self, send: Send, channel: dict[str, Any], message: Message) -> bool:
        for attempt in range(1, self.attempts + 1):
            if self._closed.is_set():
                return False
            try:
                outcome = channels.deliver(channel, message, self.timeout_s)
            except Exception as exc:  # noqa: BLE001
                # A channel's bug: recorded and retried; its text is not logged, as it may hold the secret.
                outcome = channels.Outcome(False, None, type(exc).__name__)
                log.error("the %s channel failed with %s", channel["type"], type(exc).__name__)
            try:
                self.records.record_attempt(send, channel, attempt, outcome)
            except Exception:  # recording must never stop a delivery
                log.exception("could not record a digest delivery attempt")
            if outcome.ok:
                return True
            if attempt < self.attempts:
                self._closed.wait(random.uniform(0, self.base_delay_s * 2 ** (attempt - 1)))
        log.warning("digest %d to %s failed after %d attempts", send.digest_id, channel["type"], self.attempts)
        return False
