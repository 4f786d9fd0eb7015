"""Digests, their sends and delivery attempts, in the collector's database.

A scheduled send is claimed in one transaction that moves the digest's `last_period` to the period and records the
send with the claiming process: of several collectors (a lake) only one moves it (PostgreSQL's repeatable read fails
the second at its write), so a period is sent once. A claim a minute old without any attempt (the claimer died) is
taken over by exactly one other process, as alert notifications are (collector/alerts/engine.py).
"""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import date, datetime
from typing import Any, NamedTuple

from collector.alerts import channels
from collector.alerts.rules import masked
from collector.digests.spec import Digest, Period, next_send, period_of, with_stored_secrets
from collector.store.file import Store

_COLUMNS = "id, name, schedule, send_hour, filters, channels, enabled, last_period, created_at, updated_at"


class Stored(NamedTuple):
    digest_id: int
    digest: Digest
    last_period: date | None
    created_at: datetime
    updated_at: datetime


class Send(NamedTuple):
    """One report to deliver: which digest, which period, who claimed it."""

    send_id: int
    digest_id: int
    digest: Digest
    period: Period
    reason: str  # "schedule" or "now"
    claimed_by: str
    claimed_at: datetime


def _stored(row: tuple[Any, ...]) -> Stored:
    digest_id, name, schedule, hour, filters, channel_list, enabled, last_period, created, updated = row
    digest = Digest(name, schedule, hour, json.loads(filters), json.loads(channel_list), enabled)
    return Stored(digest_id, digest, last_period, created, updated)


def _values(digest: Digest) -> list[Any]:
    return [digest.name, digest.schedule, digest.send_hour, json.dumps(digest.filters, sort_keys=True),
            json.dumps(digest.channels), digest.enabled]  # fmt: skip


class DigestStore:
    def __init__(self, store: Store) -> None:
        self.store = store

    def create(self, digest: Digest, now: datetime) -> int:
        """Store a new digest; DigestError for a masked secret (it stands for nothing yet)."""
        digest = with_stored_secrets(digest, [])
        with self.store.transaction() as con:
            digest_id = self.store.next_id(con, "digest_ids")
            con.execute(
                "INSERT INTO digests (id, name, schedule, send_hour, filters, channels, enabled, created_at, "
                "updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [digest_id, *_values(digest), now, now],
            )
        return digest_id

    def update(self, digest_id: int, digest: Digest, now: datetime) -> bool:
        """Replace a digest; channels sent back masked keep their stored secrets. What was sent stays sent."""
        with self.store.transaction() as con:
            stored = con.execute("SELECT channels FROM digests WHERE id = ?", [digest_id]).fetchone()
            if stored is None:
                return False
            digest = with_stored_secrets(digest, json.loads(stored[0]))
            con.execute(
                "UPDATE digests SET name = ?, schedule = ?, send_hour = ?, filters = ?, channels = ?, enabled = ?, "
                "updated_at = ? WHERE id = ?",
                [*_values(digest), now, digest_id],
            )
        return True

    def delete(self, digest_id: int) -> bool:
        with self.store.transaction() as con:
            (found,) = con.execute("DELETE FROM digests WHERE id = ?", [digest_id]).fetchone()
        return bool(found)

    def digests(self, con: Any, digest_id: int | None = None) -> list[Stored]:
        where, params = (" WHERE id = ?", [digest_id]) if digest_id is not None else ("", [])
        return [_stored(row) for row in con.execute(f"SELECT {_COLUMNS} FROM digests{where} ORDER BY id", params)
                .fetchall()]  # fmt: skip

    def shown(self, con: Any, now: datetime, digest_id: int | None = None) -> list[dict[str, Any]]:
        """Digests as the API returns them: secrets masked, the last period sent and when the next report goes."""
        shown = []
        for stored in self.digests(con, digest_id):
            item = asdict(stored.digest)
            item.update(
                id=stored.digest_id,
                channels=masked(stored.digest.channels),
                last_period=stored.last_period.isoformat() if stored.last_period else None,
                next_send_at=next_send(stored.digest, stored.last_period, now).isoformat()
                if stored.digest.enabled and stored.digest.channels
                else None,
                created_at=stored.created_at.isoformat(),
                updated_at=stored.updated_at.isoformat(),
            )
            shown.append(item)
        return shown

    def claim_scheduled(self, stored: Stored, period: Period, claimed_by: str, now: datetime) -> int | None:
        """Claim the period's scheduled report for `claimed_by`; its send id, or None when the digest changed or was
        claimed meanwhile (another collector sent it)."""
        with self.store.transaction() as con:
            row = con.execute(f"SELECT {_COLUMNS} FROM digests WHERE id = ?", [stored.digest_id]).fetchone()
            if row is None or _stored(row).digest != stored.digest or _stored(row).last_period == period.start:
                return None
            con.execute("UPDATE digests SET last_period = ? WHERE id = ?", [period.start, stored.digest_id])
            return self._record_send(con, stored.digest_id, period, "schedule", claimed_by, now)

    def record_send_now(self, digest_id: int, period: Period, claimed_by: str, now: datetime) -> int:
        """A "send now": recorded like a scheduled send, leaving the schedule as it was."""
        with self.store.transaction() as con:
            return self._record_send(con, digest_id, period, "now", claimed_by, now)

    def _record_send(
        self, con: Any, digest_id: int, period: Period, reason: str, claimed_by: str, now: datetime
    ) -> int:
        send_id = self.store.next_id(con, "digest_send_ids")
        con.execute(
            "INSERT INTO digest_sends (id, digest_id, period_start, period_end, reason, claimed_by, claimed_at, "
            "created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [send_id, digest_id, period.start, period.end, reason, claimed_by, now, now],
        )
        return send_id

    def still_claimed(self, send: Send, now: datetime) -> bool:
        """Renew the claim right before sending; False if another process took it over."""
        with self.store.transaction() as con:
            (renewed,) = con.execute(
                "UPDATE digest_sends SET claimed_at = ? WHERE id = ? AND claimed_by = ?",
                [now, send.send_id, send.claimed_by],
            ).fetchone()
        return bool(renewed)

    def undelivered(self, con: Any, since: datetime, claimed_before: datetime) -> list[Send]:
        """Sends since `since`, of digests that still exist, claimed before `claimed_before`, without any attempt."""
        rows = con.execute(
            "SELECT s.id, s.period_start, s.period_end, s.reason, s.claimed_by, s.claimed_at, "
            + ", ".join(f"d.{column.strip()}" for column in _COLUMNS.split(","))
            + " FROM digest_sends s JOIN digests d ON d.id = s.digest_id WHERE s.created_at >= ? AND s.claimed_at <= ?"
            " AND NOT EXISTS (SELECT 1 FROM digest_attempts a WHERE a.send_id = s.id) ORDER BY s.id",
            [since, claimed_before],
        ).fetchall()
        found = []
        for send_id, start, end, reason, claimed_by, claimed_at, *digest_row in rows:
            stored = _stored(tuple(digest_row))
            period = period_of(stored.digest.schedule, start, end)
            found.append(Send(send_id, stored.digest_id, stored.digest, period, reason, claimed_by, claimed_at))
        return found

    def take_over(self, send: Send, claimed_by: str, now: datetime) -> bool:
        with self.store.transaction() as con:
            (changed,) = con.execute(
                "UPDATE digest_sends SET claimed_by = ?, claimed_at = ? WHERE id = ? AND claimed_by = ? "
                "AND claimed_at = ?",
                [claimed_by, now, send.send_id, send.claimed_by, send.claimed_at],
            ).fetchone()
        return bool(changed)

    def record_attempt(self, send: Send, channel: dict[str, Any], attempt: int, outcome: channels.Outcome) -> None:
        with self.store.transaction() as con:
            con.execute(
                "INSERT INTO digest_attempts (id, send_id, digest_id, channel_type, channel_host, attempt, "
                "attempted_at, ok, http_status, error) VALUES (?, ?, ?, ?, ?, ?, now(), ?, ?, ?)",
                [self.store.next_id(con, "digest_attempt_ids"), send.send_id, send.digest_id, channel["type"],
                 channels.host(channel), attempt, outcome.ok, outcome.http_status, outcome.error],
            )  # fmt: skip

    def deliveries(self, con: Any, digest_id: int | None = None, limit: int = 100) -> list[dict[str, Any]]:
        """The latest sends, newest first, each with its attempts (a channel's host only, never its secret)."""
        where, params = (" WHERE digest_id = ?", [digest_id]) if digest_id is not None else ("", [])
        sends = con.execute(
            f"SELECT id, digest_id, period_start, period_end, reason, created_at FROM digest_sends{where} "
            "ORDER BY created_at DESC, id DESC LIMIT ?",
            [*params, limit],
        ).fetchall()
        attempts: dict[int, list[dict[str, Any]]] = {}
        if sends:
            marks = ", ".join("?" * len(sends))
            for row in con.execute(
                "SELECT send_id, channel_type, channel_host, attempt, attempted_at, ok, http_status, error "
                f"FROM digest_attempts WHERE send_id IN ({marks}) ORDER BY id",
                [send[0] for send in sends],
            ).fetchall():
                names = ("channel_type", "channel_host", "attempt", "time", "ok", "http_status", "error")
                item = dict(zip(names, row[1:], strict=True))
                attempts.setdefault(row[0], []).append({**item, "time": item["time"].isoformat()})
        return [
            {"id": send_id, "digest_id": digest_id_, "period": {"from": start.isoformat(), "to": end.isoformat()},
             "reason": reason, "time": created.isoformat(), "attempts": attempts.get(send_id, [])}
            for send_id, digest_id_, start, end, reason, created in sends
        ]  # fmt: skip
