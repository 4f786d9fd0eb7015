"""What the app asks of the guard, checked when it is set (never discovered mid-call)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from llmledger import pricing


@dataclass(frozen=True, kw_only=True)
class GuardSettings:
    """`instrument(guard=GuardSettings(...))`; `guard=True` is all defaults."""

    budgets: bool = True  # enforce the collector's budget rules that have an `enforce` part
    poll_interval_s: float = 5.0  # how often the collector's spend is read
    collector_url: str | None = None  # default: where configure() exports (LLMLEDGER_ENDPOINT)
    fail_closed: bool = False  # collector unreachable for 3 polls: block budgeted calls (default: keep last known)
    default_max_output_tokens: int = 4096  # a call's worst case when it sets no max_tokens
    on_warn: Callable[[Any], None] | None = None  # called once per budget and window when a `warn` budget is reached
    breaker: bool = True
    failure_threshold: int = 5  # consecutive failures that open a circuit
    error_rate_threshold: float = 0.5  # or this share of failures ...
    error_rate_window: int = 20  # ... among the last calls (at least half of them seen)
    cool_down_s: float = 30.0  # open → half-open: one probe goes through
    fallbacks: Mapping[str, str] = field(default_factory=dict)  # model → model to call while its circuit is open
    pace: bool = False  # delay calls that would hit a rate limit, from x-ratelimit-* headers
    pace_max_wait_s: float = 2.0  # never hold a call longer; beyond it, send it

    def __post_init__(self) -> None:
        _positive("poll_interval_s", self.poll_interval_s)
        _positive("cool_down_s", self.cool_down_s)
        if not 0 <= self.pace_max_wait_s <= 600:
            raise ValueError(f"guard: pace_max_wait_s must be between 0 and 600 seconds, got {self.pace_max_wait_s}")
        if self.failure_threshold < 1 or self.error_rate_window < 2:
            raise ValueError("guard: failure_threshold must be at least 1 and error_rate_window at least 2")
        if not 0 < self.error_rate_threshold <= 1:
            raise ValueError(f"guard: error_rate_threshold is a share in (0, 1], got {self.error_rate_threshold}")
        if self.default_max_output_tokens < 1:
            raise ValueError("guard: default_max_output_tokens must be at least 1")
        for model, fallback in self.fallbacks.items():
            if fallback == model:
                raise ValueError(f"guard: the fallback for {model!r} is itself")
            if pricing.rates_for(fallback, None) is None:
                raise ValueError(f"guard: fallback model {fallback!r} (for {model!r}) is not in the price list")


def _positive(name: str, value: float) -> None:
    if not value > 0:
        raise ValueError(f"guard: {name} must be more than 0, got {value}")


def from_argument(guard: bool | GuardSettings | None, environment: str | None) -> GuardSettings | None:
    """`instrument(guard=...)` wins; else `LLMLEDGER_GUARD` (true/false, or `fail_closed`, `pace`: comma-separated)."""
    if isinstance(guard, GuardSettings):
        return guard
    if guard is not None:
        return GuardSettings() if guard else None
    if not environment:
        return None
    words = {word.strip().lower() for word in environment.split(",") if word.strip()}
    if words <= {"0", "false", "off", "no"}:
        return None
    unknown = words - {"1", "true", "on", "yes", "fail_closed", "pace"}
    if unknown:
        raise ValueError(f"LLMLEDGER_GUARD: {', '.join(sorted(unknown))} not understood; use true, fail_closed, pace")
    return GuardSettings(fail_closed="fail_closed" in words, pace="pace" in words)
