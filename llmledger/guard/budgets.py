"""Budgets as the collector last reported them, plus what this process has reserved and spent since.

A call reserves its worst case (its input tokens + its output cap, at the model's rates) under one lock before it
goes out, so concurrent calls of one process can't all fit into the same room; it settles to its real cost when it
ends. The input is bounded cheaply (a token is at least one byte) and counted with the tokenizer only near a limit.
A call far from every limit is one comparison: each set of covering budgets keeps the room it had when last decided
in full (`_Cover.room`), which only the process's own reservations use up until a snapshot arrives.
The collector's spend arrives by polling; a settled call stays in the local ledger until a snapshot taken well after
it (`export_margin_s`: the span must have been exported and stored) has counted it. Several processes see each other
only through the collector, so together they can overshoot by about one poll interval's spend.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from llmledger.guard.errors import BudgetExceeded

log = logging.getLogger("llmledger")

LABELS = ("service", "environment", "team", "feature", "end_user", "model")
ACTIONS = ("warn", "block", "downgrade")


@dataclass(frozen=True)
class Budget:
    id: int
    name: str
    window: str  # "day" | "month" (UTC)
    window_start: datetime
    filters: Mapping[str, tuple[str, ...]]
    limit_usd: Decimal
    spent_usd: Decimal
    action: str
    downgrade_to: str | None = None
    op: str = ">"  # the rule's: over the limit (">"), or at it (">=")

    def exceeded_by(self, total: Decimal) -> bool:
        return total >= self.limit_usd if self.op == ">=" else total > self.limit_usd

    def covers(self, labels: Mapping[str, str | None]) -> bool:
        return all(labels.get(key) in values for key, values in self.filters.items())


def parse_budgets(payload: Any) -> tuple[datetime, list[Budget]]:
    """The collector's `GET /v1/guard/budgets` answer; ValueError when it isn't one."""
    if not isinstance(payload, Mapping) or not isinstance(payload.get("budgets"), list):
        raise ValueError("not a budgets document")
    as_of = _time(payload.get("as_of"))
    budgets = []
    for item in payload["budgets"]:
        action = item.get("action")
        window = item.get("window")
        if action not in ACTIONS or window not in ("day", "month"):
            raise ValueError(f"budget {item.get('id')}: action {action!r} / window {window!r} not understood")
        filters = item.get("filters") or {}
        budgets.append(
            Budget(
                id=int(item["id"]),
                name=str(item.get("name") or item["id"]),
                window=window,
                window_start=_time(item.get("window_start")),
                filters={key: tuple(values) for key, values in filters.items() if key in LABELS},
                limit_usd=Decimal(str(item["limit_usd"])),
                spent_usd=Decimal(str(item["spent_usd"])),
                action=action,
                downgrade_to=item.get("downgrade_to") or None,
                op=">=" if item.get("op") == ">=" else ">",
            )
        )
    return as_of, budgets


def _time(value: Any) -> datetime:
    if not isinstance(value, str):
        raise ValueError(f"expected an RFC 3339 time, got {value!r}")
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)


def window_start(window: str, now: datetime) -> datetime:
    day = datetime(now.year, now.month, now.day, tzinfo=UTC)
    return day if window == "day" else day.replace(day=1)


@dataclass(slots=True)
class Reservation:
    """One call's claim on the budgets that cover it: its worst case until it ends, then its real cost."""

    budget_ids: tuple[int, ...]
    amount: Decimal
    settled_at: datetime | None = None  # None: still reserved
    ended_at: float | None = None  # the call ended (UNIX time): its real cost is worked out later (`BudgetBook.end`)
    cost: Callable[[], Decimal | None] | None = None


@dataclass
class _Local:
    """One budget's spend in this process that the collector may not have counted yet: reserved (in flight) and
    settled (ended, oldest first), kept as running totals so that a decision costs the same however many calls
    the process made."""

    reserved: Decimal = Decimal(0)
    settled: deque[tuple[datetime, Decimal]] = field(default_factory=deque)
    settled_total: Decimal = Decimal(0)

    def forget_before(self, moment: datetime) -> None:
        while self.settled and self.settled[0][0] <= moment:
            self.settled_total -= self.settled.popleft()[1]


@dataclass(slots=True)
class _Cover:
    """The budgets that cover one set of labels (as of the book's `epoch`), and the room a call needs to stay under
    for `reserve_if_far` to let it through at once: the book's `_drawn` when a call was last decided in full, plus
    the least headroom of these budgets then (None: not known, decide in full). What the books drew since can only
    have used up less of it: a reservation adds to `_drawn` as much as to any budget's spend; a settled call spends
    no more than it reserved (else a new epoch begins), a new day or a forgotten call spends less; a snapshot begins
    a new epoch."""

    budgets: list[Budget]
    ids: tuple[int, ...]
    locals: list[_Local]
    epoch: int
    room: Decimal | None = None


@dataclass
class Decision:
    model: str  # the model to send (the app's, or a downgrade's)
    action: str | None = None  # warned | downgraded
    budget_id: int | None = None
    reservation: Reservation | None = None
    warned: list[Budget] = field(default_factory=list)


class BudgetBook:
    def __init__(self, export_margin_s: float = 10.0, fail_closed: bool = False, stale_after_s: float = 15.0) -> None:
        self.export_margin_s = export_margin_s
        self.fail_closed = fail_closed
        self.stale_after_s = stale_after_s
        self._budgets: list[Budget] = []
        self._local: dict[int, _Local] = {}
        self._warned: set[tuple[int, datetime]] = set()
        self._last_ok: float | None = None  # monotonic time of the last good snapshot
        self._ended: dict[int, Reservation] = {}  # id → reservations of ended calls, not settled yet
        # The budgets that cover a call's labels (with their room, see _Cover), and the current UTC day's and
        # month's starts: worked out once, so that a decision far from any limit is a lookup and a comparison.
        self._covering: dict[tuple[str | None, ...], _Cover] = {}
        self._drawn = Decimal(0)  # every reservation's worst case, added up since the epoch began
        self._epoch = 0
        self._windows: tuple[tuple[int, int, int], datetime, datetime] | None = None
        self._lock = threading.Lock()

    @property
    def budgets(self) -> list[Budget]:
        return self._budgets

    def apply(self, as_of: datetime, budgets: list[Budget]) -> None:
        """A fresh snapshot: the collector's spend replaces ours for what it has surely stored by now."""
        horizon = as_of - timedelta(seconds=self.export_margin_s)
        with self._lock:
            self._budgets = budgets
            self._covering.clear()
            self._drawn, self._epoch = Decimal(0), self._epoch + 1
            for local in self._local.values():
                local.forget_before(horizon)
            self._last_ok = time.monotonic()

    def stale(self) -> bool:
        return self._last_ok is None or time.monotonic() - self._last_ok > self.stale_after_s

    def covering(self, labels: Mapping[str, str | None]) -> list[Budget]:
        return [budget for budget in self._budgets if budget.covers(labels)]

    def cover(self, key: tuple[str | None, ...]) -> _Cover:
        """The budgets covering a call's labels, keyed by their values in `LABELS`' order. Safe without the lock:
        a cover made while a snapshot arrives is of the epoch before (read first, `apply` moves it last), and only
        a cover of the current epoch is used under the lock."""
        found = self._covering.get(key)
        if found is None or found.epoch != self._epoch:
            if len(self._covering) >= _COVERING_CACHE:  # many end users: start again rather than grow
                self._covering.clear()
            epoch, labels = self._epoch, dict(zip(LABELS, key, strict=True))
            budgets = [budget for budget in self._budgets if budget.covers(labels)]
            locals_ = [self._local.setdefault(budget.id, _Local()) for budget in budgets]
            found = self._covering[key] = _Cover(budgets, tuple(budget.id for budget in budgets), locals_, epoch)
        return found

    def reserve_if_far(self, cover: _Cover, worst: Decimal) -> Reservation | None:
        """The common case, decided in one comparison: the call's worst case fits the room its budgets had when a
        call was last decided in full, less everything reserved since. None: decide it in full (`decide`)."""
        with self._lock:
            if cover.epoch != self._epoch or cover.room is None or self._drawn + worst >= cover.room:
                return None
            if self.fail_closed and self.stale():
                return None
            self._drawn += worst
            for local in cover.locals:
                local.reserved += worst
            return Reservation(cover.ids, worst)

    def decide(
        self,
        labels: dict[str, str | None],
        worst_case: Any,  # (model, exact) -> Decimal | None: the most the call can cost at that model's rates
        now: datetime | None = None,
    ) -> Decision:
        """Downgrade, block or warn, and reserve the call's worst case: all under one lock, so that concurrent calls
        are decided one after another against the same ledger. Raises `BudgetExceeded`."""
        model = labels["model"] or ""
        now = now or datetime.now(tz=UTC)
        with self._lock:
            # Failing closed: never having read the budgets blocks every call; stale ones block what they cover.
            if self.fail_closed and self.stale() and (self._last_ok is None or self._budgets_for(labels, model)):
                raise BudgetExceeded(None, "collector unreachable", Decimal(0), Decimal(0),
                                     "the guard fails closed and has no recent spend from the collector")  # fmt: skip
            decision = Decision(model=model)
            for _ in range(3):  # a downgrade's model may be covered by budgets of its own
                candidates = [b for b in self._budgets_for(labels, decision.model) if b.action == "downgrade"]
                if not candidates:
                    break
                over = self._over_exactly(candidates, worst_case, decision.model, now)
                downgrade = next((b for b in over if b.action == "downgrade" and b.downgrade_to), None)
                if downgrade is None or downgrade.downgrade_to == decision.model:
                    break
                decision.model = downgrade.downgrade_to or decision.model
                decision.action, decision.budget_id = "downgraded", downgrade.id
            covering = self._budgets_for(labels, decision.model)
            if not covering:
                return decision
            worst = worst_case(decision.model, False)
            over = self._over(covering, worst, now)
            if over:  # near a limit: the calls that ended count at their real cost, and this one's input exactly
                self._settle_ended()
                worst = worst_case(decision.model, True)
                over = self._over(covering, worst, now)
            blocking = next((b for b in over if b.action == "block"), None)
            if blocking is not None:
                spent = self._spent(blocking, now)
                raise BudgetExceeded(blocking.id, blocking.name, spent, blocking.limit_usd,
                                     f"this call (up to ${worst}) would take the {blocking.window}'s spend "
                                     "over its limit")  # fmt: skip
            for budget in over:
                if budget.action == "warn" and (budget.id, budget.window_start) not in self._warned:
                    self._warned.add((budget.id, budget.window_start))
                    decision.warned.append(budget)
                    if decision.action is None:
                        decision.action, decision.budget_id = "warned", budget.id
            if worst is not None:
                decision.reservation = Reservation(tuple(b.id for b in covering), worst)
                for budget in covering:
                    self._local.setdefault(budget.id, _Local()).reserved += worst
                self._drawn += worst
                if not over and decision.model == model:  # far from every limit: the next calls may use the room
                    cover = self.cover(_key(labels, model))
                    cover.room = self._drawn + min(b.limit_usd - self._spent(b, now) for b in covering)
                    cover.epoch = self._epoch
            return decision

    def end(self, reservation: Reservation, cost: Callable[[], Decimal | None], ended_at: float) -> None:
        """The call ended (`ended_at`: UNIX time); `cost` works out what it really cost. Its worst case stays
        reserved until `settle_ended` runs it, off the app's thread (the wrapper's finisher), or at once when a
        decision near a limit needs it: the books err early, never late."""
        reservation.ended_at, reservation.cost = ended_at, cost
        self._ended[id(reservation)] = reservation  # one step for the GIL: `_settle_ended` copies, under the lock

    def settle_ended(self, reservation: Reservation) -> None:
        """Settle an ended call at its real cost (nothing if it was settled already)."""
        if reservation.cost is None or reservation.settled_at is not None:
            return
        cost = _cost_of(reservation)
        with self._lock:
            self._settle(reservation, cost, _ended_at(reservation))

    def settle(self, reservation: Reservation, cost: Decimal | None, now: datetime) -> None:
        """The call ended: its real cost replaces its worst case (an unknown cost keeps the worst case)."""
        with self._lock:
            self._settle(reservation, cost, now)

    def _settle(self, reservation: Reservation, cost: Decimal | None, now: datetime) -> None:
        self._ended.pop(id(reservation), None)
        if reservation.settled_at is not None:
            return
        amount = reservation.amount if cost is None else cost
        if amount > reservation.amount:  # more than its worst case (a bound that didn't hold): rooms are wrong
            self._epoch += 1
        for budget_id in reservation.budget_ids:
            local = self._local.setdefault(budget_id, _Local())
            local.reserved -= reservation.amount
            local.settled.append((now, amount))
            local.settled_total += amount
        reservation.amount, reservation.settled_at = amount, now

    def _settle_ended(self) -> None:
        for reservation in list(self._ended.values()):
            self._settle(reservation, _cost_of(reservation), _ended_at(reservation))

    def spent(self, budget: Budget, now: datetime) -> Decimal:
        with self._lock:
            return self._spent(budget, now)

    def _budgets_for(self, labels: Mapping[str, str | None], model: str) -> list[Budget]:
        return self.cover(_key(labels, model)).budgets

    def _over_exactly(self, budgets: Sequence[Budget], worst_case: Any, model: str, now: datetime) -> list[Budget]:
        """Budgets this call would take over their limit: a cheap upper bound of its tokens first, counted exactly
        only when the bound doesn't fit (near a limit), so most calls never run the tokenizer."""
        over = self._over(budgets, worst_case(model, False), now)
        if not over:
            return over
        self._settle_ended()
        return self._over(budgets, worst_case(model, True), now)

    def _over(self, budgets: Sequence[Budget], worst: Decimal | None, now: datetime) -> list[Budget]:
        extra = worst or Decimal(0)
        return [budget for budget in budgets if budget.exceeded_by(self._spent(budget, now) + extra)]

    def _spent(self, budget: Budget, now: datetime) -> Decimal:
        start = self._window_start(budget.window, now)
        # A snapshot from an earlier window (the day turned since the last poll) counts nothing of this one.
        spent = budget.spent_usd if budget.window_start >= start else Decimal(0)
        local = self._local.get(budget.id)
        if local is None:
            return spent
        if local.settled and local.settled[0][0] < start:
            local.forget_before(start - timedelta(microseconds=1))
        return spent + local.reserved + local.settled_total

    def _window_start(self, window: str, now: datetime) -> datetime:
        today = (now.year, now.month, now.day)
        if self._windows is None or self._windows[0] != today:
            self._windows = (today, window_start("day", now), window_start("month", now))
        return self._windows[1] if window == "day" else self._windows[2]


_COVERING_CACHE = 10_000


def _key(labels: Mapping[str, str | None], model: str) -> tuple[str | None, ...]:
    return (*(labels.get(name) for name in LABELS[:-1]), model)


def _ended_at(reservation: Reservation) -> datetime:
    ended_at = reservation.ended_at
    return datetime.now(tz=UTC) if ended_at is None else datetime.fromtimestamp(ended_at, UTC)


def _cost_of(reservation: Reservation) -> Decimal | None:
    """An ended call's real cost; unknown (its worst case stays) when it can't be worked out."""
    try:
        return reservation.cost() if reservation.cost is not None else None
    except Exception:  # the books keep the worst case rather than fail a decision
        log.debug("llmledger guard: a call's cost could not be worked out", exc_info=True)
        return None
