"""The fixes: each checklist item's advice, with a code snippet or an alert rule ready to create."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

from collector.readiness.model import Facts, Scope


def _fix(text: str, snippet: str | None = None, rule: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"text": text, "snippet": snippet, "rule": rule}


def static(text: str, snippet: str | None = None) -> Callable[[Scope, Facts], dict[str, Any]]:
    return lambda scope, facts: _fix(text, snippet)


def _rule_filters(scope: Scope) -> dict[str, list[str]]:
    return {"service": [scope.service], "environment": scope.environments}


def _nice(value: float) -> float:
    """Round up to two significant digits (a threshold a person would pick)."""
    if value <= 0:
        return 0.0
    step = 10 ** (math.floor(math.log10(value)) - 1)
    return float(round(math.ceil(value / step) * step, 9))


def budget(scope: Scope, facts: Facts) -> dict[str, Any]:
    days = max((scope.end - scope.start).total_seconds() / 86400, 1.0)
    daily = float(facts.values.get("cost") or 0) / days
    rule = {"name": f"{scope.service}: daily spend", "metric": "cost", "window": "day", "op": ">",
            "threshold": _nice(2 * daily) or 10.0, "filters": _rule_filters(scope), "channels": []}  # fmt: skip
    return _fix("Alert when a UTC day's spend passes about twice the usual (add a Slack or webhook channel); with the "
                "guard on in the app (llmledger.guard), give the rule an enforce action to warn, block or downgrade "
                "calls once the budget is spent.", rule=rule)  # fmt: skip


def alert(text: str, name: str, **rule: Any) -> Callable[[Scope, Facts], dict[str, Any]]:
    def fix(scope: Scope, facts: Facts) -> dict[str, Any]:
        body = {"name": f"{scope.service}: {name}", **rule, "filters": _rule_filters(scope), "channels": []}
        if body["metric"] == "latency_p95_ms":
            p95 = facts.values.get("p95")
            body["threshold"] = _nice(2 * p95) if p95 else 10_000.0
        return _fix(text, rule=body)

    return fix


def attest(item_id: str, what: str) -> Callable[[Scope, Facts], dict[str, Any]]:
    def fix(scope: Scope, facts: Facts) -> dict[str, Any]:
        body = json.dumps({"service": scope.service, "item": item_id, "by": "you@example.com",
                           "link": "https://ci.example.com/your-run"})  # fmt: skip
        body = body.replace("'", "'\\''")  # inside a single-quoted shell word
        snippet = (
            'curl -X POST $LLMLEDGER_API/api/v1/readiness/attest -H "Authorization: Bearer $LLMLEDGER_ADMIN_TOKEN" '
            f"-H 'content-type: application/json' -d '{body}'"
        )
        return _fix(f"{what}, then attest it with a link to the evidence (who, when, where).", snippet)

    return fix
