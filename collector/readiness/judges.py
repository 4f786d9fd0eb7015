"""The judges: each checklist item's rule, turning its facts into a status and evidence."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC
from fractions import Fraction

from collector.alerts.rules import Rule
from collector.api.auth import is_loopback
from collector.readiness.evidence import at_least, none_may, observed, pct, rate_below, share, unjudged_note
from collector.readiness.model import FAIL, PASS, UNKNOWN, Facts, Verdict


def covers(rule: Rule, service: str, environments: Sequence[str]) -> bool:
    """Whether `rule` watches `service` in one of `environments` (other filters are not judged)."""
    services = rule.filters.get("service")
    if services and service not in services:
        return False
    wanted = rule.filters.get("environment")
    return not wanted or any(environment in wanted for environment in environments)


def rule_item(metrics: tuple[str, ...], kind: str) -> Callable[[Facts], Verdict]:
    """The judge of an alert item: pass when an enabled rule of one of `metrics` covers the scope."""

    def judge(facts: Facts) -> Verdict:
        scope = facts.scope
        rules = [
            stored for stored in facts.context.rules
            if stored.rule.metric in metrics and (facts.as_of is None or stored.created_at < facts.as_of)
        ]  # fmt: skip
        covering = [s for s in rules if s.rule.enabled and covers(s.rule, scope.service, scope.environments)]
        shown = [{"id": s.id, "name": s.rule.name, "metric": s.rule.metric} for s in covering]
        evidence = {"basis": "configuration", "rules": shown, "other_rules": len(rules) - len(covering)}
        if covering:
            names = ", ".join(f"#{s.id} {s.rule.name!r}" for s in covering[:3])
            return PASS, {"summary": f"{kind} rule {names} covers {scope.service}", **evidence}
        others = f" ({len(rules)} disabled or for other services)" if rules else ""
        wanted = " or ".join(metrics)
        return FAIL, {"summary": f"no enabled {wanted} rule covers {scope.service}{others}", **evidence}

    return judge


_SPEND_RULE = rule_item(("cost", "cost_forecast_month"), "budget")


def budget(facts: Facts) -> Verdict:
    """cost.budget_rule: a spend or forecast rule covers the service (enforced in the app or not), or the service's
    calls show the guard enforcing a budget (a rule whose filters name a team or a feature, say, which `covers`
    doesn't judge)."""
    status, evidence = _SPEND_RULE(facts)
    covering = {shown["id"] for shown in evidence["rules"]}
    enforced = [{"id": s.id, "action": enforce.action} for s in facts.context.rules
                if s.id in covering and (enforce := s.rule.enforce) is not None]  # fmt: skip
    evidence["enforced"] = enforced
    calls, ids = facts.values.get("guard_budget_calls") or 0, list(facts.values.get("guard_budget_ids") or [])
    evidence.update(guard_budget_calls=calls, guard_budget_ids=ids)
    if status == PASS:
        if enforced:
            evidence["summary"] += f"; the guard enforces {len(enforced)} of them in the app"
        return status, evidence
    if calls:
        shown = ", ".join(f"#{rule_id}" for rule_id in ids[:3])
        summary = f"the guard enforced budget rule {shown} on {calls:,} calls of {facts.scope.service}"
        return PASS, {**evidence, "summary": summary, "basis": "observed"}
    return status, evidence


def attested(item_id: str) -> Callable[[Facts], Verdict]:
    """The judge of an item that can't be observed: pass once someone attests it (basis "attested")."""

    def judge(facts: Facts) -> Verdict:
        made = [
            a for a in facts.context.attestations if a.item == item_id and (facts.as_of is None or a.at < facts.as_of)
        ]
        if not made:
            return UNKNOWN, {"summary": "not attested yet (this can't be observed from traffic)", "basis": "attested"}
        latest = max(made, key=lambda a: a.at)
        evidence = {"basis": "attested", "by": latest.by, "at": latest.at.astimezone(UTC).isoformat(),
                    "link": latest.link, "note": latest.note, "attestations": len(made)}  # fmt: skip
        summary = f"attested by {latest.by} on {latest.at.astimezone(UTC).date().isoformat()}: {latest.link}"
        return PASS, {"summary": summary, **evidence}

    return judge


def retries(facts: Facts) -> Verdict:
    return none_may(facts.values, "the client's max_retries", "were made with max_retries=0", "may retry")


def timeout(facts: Facts) -> Verdict:
    verdict = none_may(facts.values, "the client's timeout", "waited longer than 120 s", "time out within 120 s")
    verdict[1]["longest_timeout_s"] = facts.values["longest"]
    return verdict


def _all_stopped(facts: Facts) -> Verdict | None:
    """Pass when every call was stopped by the guard before it was sent: no call reached the API to fail there."""
    if facts.values["calls"]:
        return None
    return PASS, observed("nothing to check: the guard stopped every call before it was sent", calls=0)


def error_rate(facts: Facts) -> Verdict:
    verdict = _all_stopped(facts) or rate_below(facts.values, Fraction(2, 100), "failed with a server error (5xx)")
    return verdict


def circuit_breaker(facts: Facts) -> Verdict:
    """At least 95% of the wrapper's calls ran with the guard's breaker on; else a breaker of the app's own, attested;
    other instrumentations can't say (unknown)."""
    verdict = at_least(facts.values, Fraction(95, 100), "ran with the guard's circuit breaker on",
                       "whether a circuit breaker is on")  # fmt: skip
    verdict[1]["circuit_open_calls"] = facts.values["circuit_open"]
    if verdict[0] == PASS:
        return verdict
    claimed = attested("eh.circuit_breaker")(facts)
    if claimed[0] == PASS:
        return PASS, {**claimed[1], "traffic": verdict[1]["summary"]}
    return verdict


def rate_limited(facts: Facts) -> Verdict:
    return _all_stopped(facts) or rate_below(facts.values, Fraction(5, 1000), "still failed with 429 after retries")


def truncation(facts: Facts) -> Verdict:
    v = facts.values
    bad, known, unjudged = v["bad"], v["known"], v["unjudged"]
    evidence = {"judged": known, "truncated": bad, "rate": share(bad, known), "limit": 0.01}
    if not known:
        if unjudged:
            return UNKNOWN, observed(f"{unjudged:,} answers don't record a finish reason", **evidence)
        return PASS, observed("nothing to check: no completed generation call in the period", **evidence)
    status = FAIL if bad * 100 >= known else PASS
    summary = f"{bad:,} of {known:,} answers stopped at max tokens ({pct(bad, known)}; under 1% wanted)"
    return status, observed(summary + unjudged_note(unjudged), **evidence)


def content(facts: Facts) -> Verdict:
    return none_may(
        facts.values, "whether content is captured", "captured prompt or completion text unredacted",
        "keep content off or redacted",
    )  # fmt: skip


def key_scope(facts: Facts) -> Verdict:
    verdict = none_may(facts.values, "the API key's kind", "used a user, admin or unknown key", "use scoped keys")
    verdict[1]["key_kinds"] = dict(facts.values["kinds"] or {})
    return verdict


def end_user(facts: Facts) -> Verdict:
    return at_least(facts.values, Fraction(95, 100), "identify the end user", "who the end user is")


def collector_auth(facts: Facts) -> Verdict:
    context = facts.context
    evidence = {"basis": "configuration", "tokens_required": context.tokens_required, "host": context.listen_host}
    if context.tokens_required:
        return PASS, {"summary": "the collector requires bearer tokens", **evidence}
    if context.listen_host is None or is_loopback(context.listen_host):
        where = context.listen_host or "loopback"
        return PASS, {"summary": f"no tokens, and the collector listens on {where} only", **evidence}
    return FAIL, {"summary": f"the collector listens on {context.listen_host} without tokens", **evidence}


def no_secrets(facts: Facts) -> Verdict:
    found = sum(facts.secrets.values())
    evidence = {"basis": "observed", "scrubbed_values": found, "columns": dict(facts.secrets)}
    if found:
        columns = ", ".join(sorted(facts.secrets))
        return FAIL, {"summary": f"{found:,} values that looked like API keys were scrubbed at ingest ({columns})",
                      **evidence}  # fmt: skip
    return PASS, {"summary": f"no value of {facts.calls['production']:,} calls looked like an API key", **evidence}


def max_tokens(facts: Facts) -> Verdict:
    return at_least(
        facts.values,
        Fraction(99, 100),
        "set max tokens",
        "whether max tokens was set",
        "no generation call in the period",
    )


def caching(facts: Facts) -> Verdict:
    v = facts.values
    cached, total, unjudged = v["cached"], v["input"], v["unjudged"]
    evidence = {"long_prompt_calls": v["known"], "input_tokens": total, "cached_input_tokens": cached,
                "share": share(cached, total), "minimum": 0.2}  # fmt: skip
    if not v["known"]:
        if unjudged:
            return UNKNOWN, observed(f"{unjudged:,} long-prompt calls don't record cached tokens", **evidence)
        return PASS, observed("nothing to check: no prompt reached 1,024 tokens", **evidence)
    status = PASS if cached * 5 >= total else FAIL
    summary = f"{pct(cached, total)} of the input tokens of {v['known']:,} calls of 1,024+ tokens were cached"
    return status, observed(summary + " (at least 20% wanted)" + unjudged_note(unjudged), **evidence)


def priced(facts: Facts) -> Verdict:
    unpriced, calls = facts.values["bad"], facts.calls["production"]
    evidence = {"calls": calls, "unpriced": unpriced}
    if unpriced:
        return FAIL, observed(f"{unpriced:,} of {calls:,} calls could not be priced", **evidence)
    return PASS, observed(f"all {calls:,} calls priced", **evidence)


def batch(facts: Facts) -> Verdict:
    marked = list(facts.context.batch_features)
    if not marked:
        return UNKNOWN, {"summary": "no feature is marked batch-eligible", "basis": "observed", "features": []}
    v = facts.values
    evidence = {"features": marked, "calls": v["known"], "batch_calls": v["good"]}
    if not v["known"]:
        return PASS, observed("nothing to check: the marked features made no calls in the period", **evidence)
    live = v["known"] - v["good"]
    if live:
        return FAIL, observed(f"{live:,} of {v['known']:,} calls of batch-eligible features were live", **evidence)
    return PASS, observed(f"all {v['known']:,} calls of batch-eligible features went through the Batch API", **evidence)


def request_ids(facts: Facts) -> Verdict:
    return at_least(facts.values, Fraction(99, 100), "keep the x-request-id", "the request id")


def ttft(facts: Facts) -> Verdict:
    return at_least(
        facts.values,
        Fraction(99, 100),
        "report time to first token and exact usage",
        "how streams went",
        "no streamed call in the period",
    )


def model_pinned(facts: Facts) -> Verdict:
    return none_may(
        facts.values, "the requested model", "named a model alias", "name dated snapshots",
        "no generation call in the period",
    )  # fmt: skip


def non_prod_traffic(facts: Facts) -> Verdict:
    v = facts.values
    environments = sorted(v["environments"] or [])
    evidence = {"non_production_calls": v["good"], "environments": environments, "no_environment_calls": v["no_env"]}
    if v["good"]:
        shown = ", ".join(environments[:5])
        return PASS, observed(f"{v['good']:,} calls from non-production environments ({shown})", **evidence)
    unnamed = f" ({v['no_env']:,} calls name no environment)" if v["no_env"] else ""
    return FAIL, observed(f"no call from a non-production environment{unnamed}", **evidence)


def error_paths(facts: Facts) -> Verdict:
    v = facts.values
    evidence = {"non_production_calls": v["calls"], "errors_429_5xx": v["errors"], "retried_calls": v["retried"]}
    if not v["calls"]:
        return FAIL, observed("no non-production traffic to exercise error paths", **evidence)
    summary = f"non-production traffic saw {v['errors']:,} calls end in 429/5xx and {v['retried']:,} retried calls"
    if v["errors"] and v["retried"]:
        return PASS, observed(summary, **evidence)
    if not v["attempts_known"]:
        return UNKNOWN, observed("non-production calls don't record retries (other instrumentations)", **evidence)
    return FAIL, observed(summary + " (both wanted)", **evidence)
