"""What the checklist works with: statuses, the scope scored, what the team stored, an item's facts, and an item."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from collector.alerts.rules import Rule

PASS, FAIL, UNKNOWN = "pass", "fail", "unknown"
PRODUCTION_ENVIRONMENTS = ("production", "prod")
# Not observable in traffic: these pass once attested (basis "attested", never "observed").
ATTESTED_ITEMS = ("test.load", "test.mocked")
# Observed, but a team may also attest them: a circuit breaker of the app's own is out of the wrapper's sight.
ATTESTABLE_ITEMS = (*ATTESTED_ITEMS, "eh.circuit_breaker")


@dataclass(frozen=True)
class Scope:
    """What is scored: a service over [start, end), in one environment or the production ones."""

    service: str
    start: datetime
    end: datetime
    environment: str | None = None
    production_environments: tuple[str, ...] = PRODUCTION_ENVIRONMENTS

    @property
    def environments(self) -> list[str]:
        return [self.environment] if self.environment else list(self.production_environments)

    @property
    def described(self) -> str:
        return f"{self.environment!r}" if self.environment else "production"


@dataclass(frozen=True)
class StoredRule:
    id: int
    rule: Rule
    created_at: datetime


@dataclass(frozen=True)
class Attestation:
    item: str
    by: str
    link: str
    note: str | None
    at: datetime


@dataclass(frozen=True)
class Context:
    """What the score needs besides the calls: the collector's own set-up and what the team stored."""

    rules: Sequence[StoredRule] = ()
    attestations: Sequence[Attestation] = ()
    batch_features: Sequence[str] = ()
    tokens_required: bool = False
    listen_host: str | None = None  # None: not known (a running collector without tokens is on loopback)


@dataclass(frozen=True)
class Facts:
    """One item's view: its aggregates, the call counts, what was scrubbed, and the moment rules must predate."""

    scope: Scope
    context: Context
    values: Mapping[str, Any]
    calls: Mapping[str, int]  # "production" (the judged environments) and "all"
    secrets: Mapping[str, int]  # column → values scrubbed
    as_of: datetime | None  # rules and attestations made before this count; None: all of them


Verdict = tuple[str, dict[str, Any]]


@dataclass(frozen=True)
class Item:
    id: str
    title: str
    judge: Callable[[Facts], Verdict]
    fix: Callable[[Scope, Facts], dict[str, Any]]
    aggregates: Mapping[str, str] = field(default_factory=dict)
    # "all" only for the items about the other environments (test.non_prod_traffic, test.error_paths).
    calls: str = "production"  # the calls its aggregates and worst calls come from: "production" or "all"
    observed: bool = True  # judged from calls (unknown without any); False: from rules, set-up or attestations
    bad: str | None = None  # SQL of a call that breaks the rule
    group: tuple[str, str] = ("feature", "feature")  # (evidence key, SQL) the worst calls are grouped by
    # Advice: judged and shown like the others, but not in the score, which stays the checklist's 5 x 5 so that it
    # compares over time (README, Production readiness).
    advice: bool = False

    @property
    def category(self) -> str:
        return self.id.split(".")[0]
