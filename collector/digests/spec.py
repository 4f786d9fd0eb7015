"""What a digest may say, checked field by field (pure; the API answers 422 naming the field), and its periods.

A digest reports on the last complete UTC period (yesterday, last week from Monday, last month) and is sent once per
period after its send hour: a daily digest at 08:00 UTC each day, a weekly one on Mondays, a monthly one on the 1st.
A collector that was down at that hour sends it when it is back, within the same period.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from collector.alerts import channels, rules

SCHEDULES = ("daily", "weekly", "monthly")
DEFAULT_SEND_HOUR = 8
MAX_NAME = 200
FIELDS = frozenset({"name", "schedule", "send_hour", "filters", "channels", "enabled"})
# What the API shows beside a digest's fields: accepted back, and ignored.
SHOWN_FIELDS = frozenset({"id", "last_period", "created_at", "updated_at", "next_send_at"})
ALERT_ONLY_CHANNELS = ("pagerduty",)


class DigestError(ValueError):
    """An invalid digest: which field, and why."""

    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(f"{field_name}: {message}")
        self.field = field_name
        self.message = message


@dataclass(frozen=True)
class Digest:
    name: str
    schedule: str
    send_hour: int = DEFAULT_SEND_HOUR
    filters: dict[str, list[str]] = field(default_factory=dict)
    channels: list[dict[str, Any]] = field(default_factory=list)
    enabled: bool = True


@dataclass(frozen=True)
class Period:
    """A report's period [start, end) in whole UTC days, and the one before it (what the change is against)."""

    start: date
    end: date
    previous_start: date

    @property
    def start_time(self) -> datetime:
        return datetime.combine(self.start, time(0), UTC)

    @property
    def end_time(self) -> datetime:
        return datetime.combine(self.end, time(0), UTC)

    @property
    def previous_start_time(self) -> datetime:
        return datetime.combine(self.previous_start, time(0), UTC)

    @property
    def label(self) -> str:
        last = self.end - timedelta(days=1)
        return self.start.isoformat() if last == self.start else f"{self.start.isoformat()} to {last.isoformat()}"


def parse_digest(payload: Any) -> Digest:
    """A `Digest` from the API's JSON, or `DigestError` naming the first field that is wrong."""
    if not isinstance(payload, Mapping):
        raise DigestError("body", "must be a JSON object")
    if unknown := set(payload) - FIELDS - SHOWN_FIELDS:
        raise DigestError(sorted(unknown)[0], "is not a digest field")
    name = payload.get("name")
    if not isinstance(name, str) or not name.strip() or len(name) > MAX_NAME:
        raise DigestError("name", f"is required: a non-empty string of at most {MAX_NAME} characters")
    schedule = payload.get("schedule")
    if schedule not in SCHEDULES:
        raise DigestError("schedule", f"{schedule!r} is not one of {', '.join(SCHEDULES)}")
    hour = payload.get("send_hour", DEFAULT_SEND_HOUR)
    if isinstance(hour, bool) or not isinstance(hour, int) or not 0 <= hour <= 23:
        raise DigestError("send_hour", "must be a whole number from 0 to 23 (the UTC hour to send at)")
    enabled = payload.get("enabled", True)
    if not isinstance(enabled, bool):
        raise DigestError("enabled", "must be true or false")
    try:  # the alert rules' vocabulary: the same filters, the same channels
        filters = rules.parse_filters(payload.get("filters"))
        parsed = rules.parse_channels(payload.get("channels"))
    except rules.RuleError as exc:
        raise DigestError(exc.field, exc.message) from None
    for index, channel in enumerate(parsed):
        if channel["type"] in ALERT_ONLY_CHANNELS:
            raise DigestError("channels", f"channel {index}: {channel['type']} takes alerts only (it opens and closes "
                                          "incidents), not reports")  # fmt: skip
    return Digest(name.strip(), schedule, hour, filters, parsed, enabled)


def with_stored_secrets(digest: Digest, stored: list[dict[str, Any]]) -> Digest:
    """Channels sent back masked, as read, keep their stored secrets (the alert rules' rule: same position, type,
    mask and server); a mask that stands for nothing is refused, so a mask is never stored."""
    kept = []
    for index, channel in enumerate(digest.channels):
        try:
            kept.append(channels.keep_stored_secrets(channel, stored))
        except channels.ChannelConfigError as exc:
            raise DigestError("channels", f"channel {index}: {exc}") from None
    return Digest(digest.name, digest.schedule, digest.send_hour, digest.filters, kept, digest.enabled)


def _slot_start(schedule: str, day: date) -> date:
    """The first day of the schedule's period holding `day` (a day; the Monday of its week; the 1st of its month)."""
    if schedule == "daily":
        return day
    if schedule == "weekly":
        return day - timedelta(days=day.weekday())
    return day.replace(day=1)


def _before(schedule: str, start: date) -> date:
    """The first day of the period before the one starting at `start`."""
    if schedule == "daily":
        return start - timedelta(days=1)
    if schedule == "weekly":
        return start - timedelta(days=7)
    return (start - timedelta(days=1)).replace(day=1)


def period_of(schedule: str, start: date, end: date) -> Period:
    """The period [start, end) of a stored send, with the one before it."""
    return Period(start, end, _before(schedule, start))


def last_complete(schedule: str, now: datetime) -> Period:
    """The period a report at `now` covers: the last complete one before the period `now` is in."""
    end = _slot_start(schedule, now.astimezone(UTC).date())
    start = _before(schedule, end)
    return Period(start, end, _before(schedule, start))


def send_at(digest: Digest, now: datetime) -> datetime:
    """When the current period's report is due: its first day at the send hour (UTC)."""
    first = _slot_start(digest.schedule, now.astimezone(UTC).date())
    return datetime.combine(first, time(digest.send_hour), UTC)


def due(digest: Digest, last_period: date | None, now: datetime) -> Period | None:
    """The period to send now, or None: sent already, not yet the send hour, or disabled. Once the hour has passed
    the report is due until the next period begins, so a collector down at that hour sends it when it is back."""
    if not digest.enabled or not digest.channels or now < send_at(digest, now):
        return None
    period = last_complete(digest.schedule, now)
    return None if last_period == period.start else period


def next_send(digest: Digest, last_period: date | None, now: datetime) -> datetime:
    """When the next scheduled report goes out (now if it is due)."""
    if due(digest, last_period, now) is not None:
        return now
    at = send_at(digest, now)
    if now < at:
        return at
    following = _slot_start(digest.schedule, now.astimezone(UTC).date())
    following = {"daily": following + timedelta(days=1), "weekly": following + timedelta(days=7)}.get(
        digest.schedule, (following + timedelta(days=32)).replace(day=1)
    )
    return datetime.combine(following, time(digest.send_hour), UTC)
