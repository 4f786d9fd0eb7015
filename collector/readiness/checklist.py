"""The checklist's entry point: a service's scorecard and daily history, as JSON-ready dicts."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from collector.readiness.facts import aggregate, assemble, details, own, scoped, scrubbed
from collector.readiness.items import CATEGORIES, ITEMS, MAX_SCORE, SCORED
from collector.readiness.model import (
    FAIL,
    PASS,
    UNKNOWN,
    Context,
    Facts,
    Item,
    Scope,
    Verdict,
)

KINDS = ("production", "all")  # the calls an item's aggregates are over (Item.calls)


def judge(item: Item, facts: Facts) -> Verdict:
    """One item's status and evidence (unknown for an observed item with no calls to look at)."""
    if item.observed and not facts.calls[item.calls]:
        where = f"{facts.scope.described} calls" if item.calls == "production" else "calls in any environment"
        return UNKNOWN, {"summary": f"no {where} of {facts.scope.service} in the period", "basis": "observed",
                         "calls": 0}  # fmt: skip
    return item.judge(own(item, facts))


def band(score: int, maximum: int = MAX_SCORE) -> str:
    """80% of the scored items passed or more (20 of 25): production ready; 60% or more: needs improvement."""
    return (
        "production ready"
        if score * 5 >= maximum * 4
        else "needs improvement"
        if score * 5 >= maximum * 3
        else ("not ready")
    )


def scorecard(con: Any, scope: Scope, context: Context) -> dict[str, Any]:
    """The whole card (see the API's `GET /api/v1/readiness`); the current rules and attestations count."""
    with scoped(con, scope) as source:  # the scope's rollup rows, read once for every query of the card
        aggregates = {kind: aggregate(con, scope, context, kind, False, source).get(None, {}) for kind in KINDS}
        facts = assemble(scope, context, aggregates, scrubbed(con, scope, False).get(None, {}), None)
        categories = []
        for category, name in CATEGORIES:
            items = []
            for item in (item for item in ITEMS if item.category == category):
                status, evidence = judge(item, facts)
                if status == FAIL and item.bad is not None:
                    evidence.update(details(con, scope, context, item, source))
                fix = item.fix(scope, own(item, facts))
                items.append({"id": item.id, "title": item.title, "status": status, "evidence": _jsonable(evidence),
                              "fix": fix, "advice": item.advice})  # fmt: skip
            scored = [entry for entry in items if not entry["advice"]]
            score = sum(entry["status"] == PASS for entry in scored)
            categories.append({"name": name, "score": score, "max": len(scored), "items": items})
    score = sum(category["score"] for category in categories)
    unknown = sum(entry["status"] == UNKNOWN and not entry["advice"] for c in categories for entry in c["items"])
    return {
        "service": scope.service,
        "environment": scope.environment,
        "from": scope.start.astimezone(UTC).isoformat(),
        "to": scope.end.astimezone(UTC).isoformat(),
        "score": score,
        "max": MAX_SCORE,
        "band": band(score),
        "unknown": unknown,
        "categories": categories,
    }


def history(con: Any, scope: Scope, context: Context) -> list[dict[str, Any]]:
    """The score of each UTC day in [start, end) that has calls of the service (in any environment): two grouped
    queries over the range (and one over scrubbed secrets), then every item judged per day; a rule or an
    attestation counts from the moment it was made."""
    per_kind = {kind: aggregate(con, scope, context, kind, True) for kind in KINDS}
    secrets = scrubbed(con, scope, True)
    points = []
    for day in sorted(per_kind["all"]):
        start = datetime(day.year, day.month, day.day, tzinfo=UTC)
        end = start + timedelta(days=1)
        day_scope = Scope(scope.service, start, end, scope.environment, scope.production_environments)
        aggregates = {kind: per_kind[kind].get(day, {}) for kind in per_kind}
        facts = assemble(day_scope, context, aggregates, secrets.get(day, {}), end)
        score = sum(judge(item, facts)[0] == PASS for item in SCORED)
        points.append({"day": day.isoformat(), "score": score})
    return points


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(key): _jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(item) for item in value]
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Decimal):
        return format(value, "f")
    return value
