"""The guard's shortcuts for the common case decide exactly as the full decision would: a call far from every limit
is reserved in one comparison and the full decision takes over at the exact boundary; a circuit with no recent
failure records a success without its lock and still opens at exactly the Nth failure; the pacer reads httpx's
headers in one pass and finds what a lookup by name finds."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
import httpx2
import openai
import pytest

import llmledger
from llmledger.guard.breaker import Breakers
from llmledger.guard.budgets import LABELS, BudgetBook, parse_budgets
from llmledger.guard.pacer import Pacer

NOW = datetime.now(tz=UTC)
WORST = Decimal("0.25")


def book_with(*budgets: dict[str, Any]) -> BudgetBook:
    day = datetime(NOW.year, NOW.month, NOW.day, tzinfo=UTC).isoformat()
    book = BudgetBook()
    book.apply(*parse_budgets({"as_of": NOW.isoformat(), "budgets": [
        {"id": 1, "name": "daily", "window": "day", "window_start": day, "filters": {}, "limit_usd": "1",
         "spent_usd": "0", "action": "block"} | budget for budget in budgets]}))  # fmt: skip
    return book


def labels(team: str = "search") -> dict[str, str | None]:
    return {"service": "app", "environment": None, "team": team, "feature": None, "end_user": None, "model": "m"}


def key(team: str = "search") -> tuple[str | None, ...]:
    return tuple(labels(team)[name] for name in LABELS)


def decide(book: BudgetBook, team: str = "search", worst: Decimal = WORST) -> Any:
    return book.decide(labels(team), lambda model, exact: worst, NOW).reservation


@pytest.mark.parametrize(("op", "calls_that_fit"), [(">", 4), (">=", 3)])
def test_the_room_hands_over_to_the_full_decision_at_the_exact_limit(op: str, calls_that_fit: int) -> None:
    book = book_with({"op": op})  # $1 and calls of up to $0.25: the 4th reaches the limit exactly
    (budget,) = book.budgets
    cover = book.cover(key())
    assert book.reserve_if_far(cover, WORST) is None  # no call decided in full yet: no room known
    assert decide(book) is not None  # $0.25 spent, room for $0.75 more
    assert book.reserve_if_far(cover, WORST) is not None  # $0.50: far from the limit, one comparison
    assert book.reserve_if_far(cover, WORST) is not None  # $0.75
    assert book.reserve_if_far(cover, WORST) is None  # would reach the limit: decided in full ...
    assert book.spent(budget, NOW) == 3 * WORST
    if calls_that_fit == 4:
        assert decide(book) is not None  # ... "over $1": exactly $1 still fits
        assert book.spent(budget, NOW) == 4 * WORST
    with pytest.raises(llmledger.BudgetExceeded):
        decide(book)
    assert book.reserve_if_far(cover, WORST) is None  # at the limit, every call is decided in full


def test_reservations_through_any_labels_use_up_the_room_of_every_budget_they_share() -> None:
    book = book_with({"limit_usd": "1"}, {"id": 2, "name": "search", "limit_usd": "5", "filters": {"team": ["search"]}})
    search, ads = book.cover(key("search")), book.cover(key("ads"))
    assert decide(book, "search") is not None
    assert decide(book, "ads") is not None
    assert book.reserve_if_far(ads, WORST) is not None  # the shared daily budget: $0.75 of $1
    assert book.reserve_if_far(search, WORST) is None  # $0.75 of room when decided: ads' calls used $0.50 of it
    assert decide(book, "search") is not None  # $1 exactly: "over" $1 would block, this doesn't
    with pytest.raises(llmledger.BudgetExceeded, match="daily"):
        decide(book, "ads")


def test_a_snapshot_or_a_call_that_cost_more_than_its_worst_case_takes_the_room_away() -> None:
    book = book_with({"limit_usd": "10"})
    cover = book.cover(key())
    decide(book)
    assert book.reserve_if_far(cover, WORST) is not None
    book.apply(*parse_budgets({"as_of": NOW.isoformat(), "budgets": [
        {"id": 1, "name": "daily", "window": "day", "window_start": NOW.isoformat(), "filters": {}, "limit_usd": "10",
         "spent_usd": "9.9", "action": "block"}]}))  # fmt: skip
    assert book.reserve_if_far(cover, WORST) is None  # of the snapshot before
    assert book.reserve_if_far(book.cover(key()), WORST) is None  # a new cover: not decided in full yet
    with pytest.raises(llmledger.BudgetExceeded):
        decide(book)  # the collector's $9.90 + this process' $0.50 + $0.25

    book = book_with({"limit_usd": "10"})
    first = decide(book)
    assert book.reserve_if_far(book.cover(key()), WORST) is not None
    book.settle(first, WORST * 2, NOW)  # the bound didn't hold: every room is worked out again
    assert book.reserve_if_far(book.cover(key()), WORST) is None


def test_a_call_no_budget_covers_has_an_empty_cover() -> None:
    book = book_with({"filters": {"team": ["ads"]}})
    assert book.cover(key("search")).budgets == []
    assert book.cover(key("ads")).budgets == book.budgets


def breakers(**settings: Any) -> Breakers:
    return Breakers(llmledger.GuardSettings(budgets=False, **settings))


ERROR = openai.APIConnectionError(request=httpx.Request("POST", "http://127.0.0.1:9"))


def test_a_circuit_with_a_full_window_of_successes_opens_at_exactly_the_nth_failure() -> None:
    breaker = breakers(failure_threshold=3, error_rate_window=4, error_rate_threshold=1.0)
    for _ in range(10):  # successes only: the window fills, then each one takes the shortcut
        breaker.record("openai/m", None, False)
    for _ in range(2):
        breaker.record("openai/m", ERROR, False)
    breaker.record("openai/m", None, False)  # a success between: counting starts again
    for _ in range(2):
        breaker.record("openai/m", ERROR, False)
    assert breaker.state("openai/m") == "closed"
    breaker.record("openai/m", ERROR, False)
    assert breaker.state("openai/m") == "open"


def test_the_error_rate_counts_the_failures_still_in_the_window() -> None:
    breaker = breakers(failure_threshold=100, error_rate_window=4, error_rate_threshold=0.75)
    for failed in (True, False, False, True, False):  # the first failure has left the window: 1 of 4
        breaker.record("openai/m", ERROR if failed else None, False)
    breaker.record("openai/m", ERROR, False)  # 2 of 4
    assert breaker.state("openai/m") == "closed"
    breaker.record("openai/m", ERROR, False)  # 3 of 4
    assert breaker.state("openai/m") == "open"


RATE_HEADERS = {
    "X-RateLimit-Remaining-Requests": "0",
    "x-ratelimit-remaining-tokens": "500",
    "x-ratelimit-reset-requests": "1.5s",
    "X-Ratelimit-Reset-Tokens": "6m0s",
    "x-request-id": "req_1",
}


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize("headers", [httpx2.Headers(RATE_HEADERS), httpx.Headers(RATE_HEADERS),
                                     {name.lower(): value for name, value in RATE_HEADERS.items()}])  # fmt: skip
def test_the_pacer_reads_the_same_numbers_from_httpx_headers_and_any_mapping(headers: Any) -> None:
    clock = Clock()
    pacer = Pacer(max_wait_s=600.0, clock=clock)
    pacer.observe("openai/m", headers)
    clock.now += 0.5
    assert pacer.wait_for("openai/m", 100) == pytest.approx(1.0)  # no request left: until the requests' reset
    assert pacer.wait_for("openai/m", 1000) == pytest.approx(359.5)  # nor 1000 tokens: until the tokens' reset
    clock.now += 400
    assert pacer.wait_for("openai/m", 100) == 0.0  # both windows have reset
