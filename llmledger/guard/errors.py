"""The guard's only two exceptions into the app: each says what stopped the call."""

from __future__ import annotations

from decimal import Decimal


class BudgetExceeded(Exception):  # noqa: N818 - the name the app catches: it reads as what happened
    """A budget with action `block` has no room for this call; nothing was sent."""

    def __init__(self, budget_id: int | None, name: str, spent_usd: Decimal, limit_usd: Decimal, reason: str) -> None:
        super().__init__(
            f"llmledger budget {name!r}{f' (rule {budget_id})' if budget_id is not None else ''}: {reason}; "
            f"spent ${spent_usd} of ${limit_usd}"
        )
        self.budget_id = budget_id
        self.name = name
        self.spent_usd = spent_usd
        self.limit_usd = limit_usd


class CircuitOpen(Exception):  # noqa: N818
    """The circuit for this provider and model is open after repeated failures; nothing was sent."""

    def __init__(self, breaker: str, retry_after_s: float) -> None:
        super().__init__(
            f"llmledger circuit {breaker!r} is open after repeated failures; the next probe goes through in "
            f"{retry_after_s:.1f}s"
        )
        self.breaker = breaker
        self.retry_after_s = retry_after_s
