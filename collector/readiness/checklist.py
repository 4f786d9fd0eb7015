"""The OpenAI production checklist, scored from a service's calls: 25 items in five categories, each `pass`, `fail`
or `unknown`, with its evidence and a fix. Pure: a DuckDB cursor, the alert rules, attestations and batch-eligible
features in; JSON-ready dicts out (the API, the dashboard and `llmledger check` show the same thing).

How an item is judged
  - Items are data (`ITEMS`): SQL aggregates over the item's calls, a judge that turns those numbers into a status
    and evidence, the SQL of a call that breaks the rule (for the card's worst features or models and example
    request ids) and a fix. Every item's aggregates go into one query per kind of call set, so a scorecard is two
    aggregate queries plus one detail query per failed item, and the history is the same two queries grouped by
    UTC day.
  - Which calls: the production ones (environments `production`/`prod`, or the collector's
    `--production-environments`) for every observed item but two; with an `environment`, that one only.
    `test.non_prod_traffic` and `test.error_paths` look at every environment: they are about the others.
  - `unknown` means no evidence, never a guess: no calls at all, or only calls whose instrumentation doesn't
    record the signal (a NULL column; for `max_tokens`, `request_id` and streams, where only our wrapper's NULL
    means "not set", calls from other instrumentations are not judged and the evidence says how many).
    A rule that has nothing to apply to (no streams, no prompt of 1,024 tokens) passes, saying so.
  - Alert items look at the enabled rules: a rule covers the service when it has no service filter or names it,
    and no environment filter or one naming an environment judged. Attested items pass once attested (basis
    "attested", never "observed"). The history counts rules and attestations from the day they were made.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Any

from collector.alerts.rules import Rule
from collector.api.auth import is_loopback
from collector.query.filters import UNPRICED
from collector.store.rollups import UTC_DAY

PASS, FAIL, UNKNOWN = "pass", "fail", "unknown"
PRODUCTION_ENVIRONMENTS = ("production", "prod")
MAX_SCORE = 25
CATEGORIES = (
    ("eh", "Error handling"),
    ("sec", "Security"),
    ("cost", "Cost management"),
    ("mon", "Monitoring"),
    ("test", "Testing"),
)
ATTESTED_ITEMS = ("test.load", "test.mocked")

# SQL fragments (constants only; every value is a bound parameter).
_WRAPPER = "source_dialect = 'llmledger'"  # our wrapper: a NULL max_tokens / request_id / ttft means "not set"
_GENERATION = "operation IN ('chat', 'text_completion', 'completion', 'responses', 'generate_content')"
_SERVER_ERROR = (
    "status = 'error' AND (http_status >= 500 OR (http_status IS NULL AND error_type = 'InternalServerError'))"
)
_RATE_LIMITED = "status = 'error' AND (http_status = 429 OR (http_status IS NULL AND error_type = 'RateLimitError'))"
# Errors of another instrumentation that say neither a status nor a known class: could be anything. (The wrapper
# records the status whenever a response came back, so its status-less errors are connection errors.)
_KNOWN_ERRORS = (
    "'RateLimitError', 'InternalServerError', 'APIConnectionError', 'APITimeoutError', 'BadRequestError', "
    "'AuthenticationError', 'PermissionDeniedError', 'NotFoundError', 'ConflictError', 'UnprocessableEntityError'"
)
_UNCLASSIFIED = (
    f"status = 'error' AND http_status IS NULL AND NOT {_WRAPPER} AND coalesce(error_type, '') NOT IN ({_KNOWN_ERRORS})"
)
# Batch API results are read from a file: their requests (and max tokens) are not seen.
_LIVE_GENERATION = f"{_WRAPPER} AND {_GENERATION} AND batch IS NOT TRUE"
_TRUNCATED = "list_contains(string_split(finish_reason, ','), 'length')"
_PINNED = r"(regexp_matches(request_model, '-(\d{4}-\d{2}-\d{2}|\d{4})$') OR starts_with(request_model, 'ft:'))"
_NON_PROD = "environment IS NOT NULL AND NOT list_contains($production, environment)"
_NON_PROD_ERROR = (
    f"{_NON_PROD} AND (http_status = 429 OR http_status >= 500 "
    "OR error_type IN ('RateLimitError', 'InternalServerError'))"
)
_MODEL = "coalesce(request_model, response_model)"


# --- inputs ---------------------------------------------------------------------------------------------------


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
    calls: str = "production"  # the calls its aggregates and worst calls come from: "production" or "all"
    observed: bool = True  # judged from calls (unknown without any); False: from rules, set-up or attestations
    bad: str | None = None  # SQL of a call that breaks the rule
    group: tuple[str, str] = ("feature", "feature")  # (evidence key, SQL) the worst calls are grouped by

    @property
    def category(self) -> str:
        return self.id.split(".")[0]


# --- evidence helpers -----------------------------------------------------------------------------------------


def _pct(part: int | float, whole: int | float) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "-"


def _share(part: int | float, whole: int | float) -> float | None:
    return round(part / whole, 4) if whole else None


def _observed(summary: str, **evidence: Any) -> dict[str, Any]:
    return {"summary": summary, "basis": "observed", **evidence}


def _unjudged_note(unjudged: int) -> str:
    return f"; {unjudged:,} calls don't record it (other instrumentations)" if unjudged else ""


def _none_may(v: Mapping[str, Any], what: str, bad_text: str, ok_text: str, applies: str | None = None) -> Verdict:
    """No judged call may break the rule (`bad` of `known`); unknown when no call records the signal (or pass when
    there is no call the rule `applies` to)."""
    bad, known, calls = v["bad"], v["known"], v["calls"]
    evidence = {"calls": calls, "judged": known, "breaking": bad}
    if bad:
        return FAIL, _observed(f"{bad:,} of {known:,} calls {bad_text}", **evidence)
    if not calls and applies is not None:
        return PASS, _observed(f"nothing to check: {applies}", **evidence)
    if not known:
        return UNKNOWN, _observed(f"no call records {what} (other instrumentations don't)", **evidence)
    return PASS, _observed(f"all {known:,} calls {ok_text}{_unjudged_note(calls - known)}", **evidence)


def _at_least(v: Mapping[str, Any], minimum: Fraction, what: str, signal: str, applies: str | None = None) -> Verdict:
    """At least `minimum` of the judged calls (`good` of `known`) do `what`; unknown when no call records `signal`
    (or pass when there is nothing the rule `applies` to)."""
    good, known, unjudged = v["good"], v["known"], v.get("unjudged", 0)
    evidence = {"judged": known, "meeting": good, "share": _share(good, known), "minimum": float(minimum)}
    if not known:
        if applies is not None and not unjudged:
            return PASS, _observed(f"nothing to check: {applies}", **evidence)
        return UNKNOWN, _observed(f"no call records {signal}{_unjudged_note(unjudged)}", **evidence)
    summary = f"{_pct(good, known)} of {known:,} calls {what} (at least {float(minimum * 100):g}% wanted)"
    status = PASS if good * minimum.denominator >= minimum.numerator * known else FAIL
    return status, _observed(summary + _unjudged_note(unjudged), **evidence)


def _rate_below(v: Mapping[str, Any], limit: Fraction, what: str) -> Verdict:
    """`bad` of `calls` under `limit`; errors of unknown kind (`unclassified`) could tip it: then unknown."""
    bad, calls, unclassified = v["bad"], v["calls"], v["unclassified"]
    evidence = {"calls": calls, "matching": bad, "rate": _share(bad, calls), "limit": float(limit)}
    if unclassified:
        evidence["unclassified_errors"] = unclassified
    summary = f"{bad:,} of {calls:,} calls {what} ({_pct(bad, calls)}; under {float(limit * 100):g}% wanted)"
    if bad * limit.denominator >= limit.numerator * calls:
        return FAIL, _observed(summary, **evidence)
    if (bad + unclassified) * limit.denominator >= limit.numerator * calls:
        return UNKNOWN, _observed(f"{summary}, but {unclassified:,} errors of unknown kind could be", **evidence)
    return PASS, _observed(summary, **evidence)


def covers(rule: Rule, service: str, environments: Sequence[str]) -> bool:
    """Whether `rule` watches `service` in one of `environments` (other filters are not judged)."""
    services = rule.filters.get("service")
    if services and service not in services:
        return False
    wanted = rule.filters.get("environment")
    return not wanted or any(environment in wanted for environment in environments)


def _rule_item(metrics: tuple[str, ...], kind: str) -> Callable[[Facts], Verdict]:
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


def _attested(item_id: str) -> Callable[[Facts], Verdict]:
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


# --- judges ---------------------------------------------------------------------------------------------------


def _retries(facts: Facts) -> Verdict:
    return _none_may(facts.values, "the client's max_retries", "were made with max_retries=0", "may retry")


def _timeout(facts: Facts) -> Verdict:
    verdict = _none_may(facts.values, "the client's timeout", "waited longer than 120 s", "time out within 120 s")
    verdict[1]["longest_timeout_s"] = facts.values["longest"]
    return verdict


def _error_rate(facts: Facts) -> Verdict:
    return _rate_below(facts.values, Fraction(2, 100), "failed with a server error (5xx)")


def _rate_limited(facts: Facts) -> Verdict:
    return _rate_below(facts.values, Fraction(5, 1000), "still failed with 429 after retries")


def _truncation(facts: Facts) -> Verdict:
    v = facts.values
    bad, known, unjudged = v["bad"], v["known"], v["unjudged"]
    evidence = {"judged": known, "truncated": bad, "rate": _share(bad, known), "limit": 0.01}
    if not known:
        if unjudged:
            return UNKNOWN, _observed(f"{unjudged:,} answers don't record a finish reason", **evidence)
        return PASS, _observed("nothing to check: no completed generation call in the period", **evidence)
    status = FAIL if bad * 100 >= known else PASS
    summary = f"{bad:,} of {known:,} answers stopped at max tokens ({_pct(bad, known)}; under 1% wanted)"
    return status, _observed(summary + _unjudged_note(unjudged), **evidence)


def _content(facts: Facts) -> Verdict:
    return _none_may(
        facts.values, "whether content is captured", "captured prompt or completion text unredacted",
        "keep content off or redacted",
    )  # fmt: skip


def _key_scope(facts: Facts) -> Verdict:
    verdict = _none_may(facts.values, "the API key's kind", "used a user, admin or unknown key", "use scoped keys")
    verdict[1]["key_kinds"] = dict(facts.values["kinds"] or {})
    return verdict


def _end_user(facts: Facts) -> Verdict:
    return _at_least(facts.values, Fraction(95, 100), "identify the end user", "who the end user is")


def _collector_auth(facts: Facts) -> Verdict:
    context = facts.context
    evidence = {"basis": "configuration", "tokens_required": context.tokens_required, "host": context.listen_host}
    if context.tokens_required:
        return PASS, {"summary": "the collector requires bearer tokens", **evidence}
    if context.listen_host is None or is_loopback(context.listen_host):
        where = context.listen_host or "loopback"
        return PASS, {"summary": f"no tokens, and the collector listens on {where} only", **evidence}
    return FAIL, {"summary": f"the collector listens on {context.listen_host} without tokens", **evidence}


def _no_secrets(facts: Facts) -> Verdict:
    found = sum(facts.secrets.values())
    evidence = {"basis": "observed", "scrubbed_values": found, "columns": dict(facts.secrets)}
    if found:
        columns = ", ".join(sorted(facts.secrets))
        return FAIL, {"summary": f"{found:,} values that looked like API keys were scrubbed at ingest ({columns})",
                      **evidence}  # fmt: skip
    return PASS, {"summary": f"no value of {facts.calls['production']:,} calls looked like an API key", **evidence}


def _max_tokens(facts: Facts) -> Verdict:
    return _at_least(
        facts.values,
        Fraction(99, 100),
        "set max tokens",
        "whether max tokens was set",
        "no generation call in the period",
    )


def _caching(facts: Facts) -> Verdict:
    v = facts.values
    cached, total, unjudged = v["cached"], v["input"], v["unjudged"]
    evidence = {"long_prompt_calls": v["known"], "input_tokens": total, "cached_input_tokens": cached,
                "share": _share(cached, total), "minimum": 0.2}  # fmt: skip
    if not v["known"]:
        if unjudged:
            return UNKNOWN, _observed(f"{unjudged:,} long-prompt calls don't record cached tokens", **evidence)
        return PASS, _observed("nothing to check: no prompt reached 1,024 tokens", **evidence)
    status = PASS if cached * 5 >= total else FAIL
    summary = f"{_pct(cached, total)} of the input tokens of {v['known']:,} calls of 1,024+ tokens were cached"
    return status, _observed(summary + " (at least 20% wanted)" + _unjudged_note(unjudged), **evidence)


def _priced(facts: Facts) -> Verdict:
    unpriced, calls = facts.values["bad"], facts.calls["production"]
    evidence = {"calls": calls, "unpriced": unpriced}
    if unpriced:
        return FAIL, _observed(f"{unpriced:,} of {calls:,} calls could not be priced", **evidence)
    return PASS, _observed(f"all {calls:,} calls priced", **evidence)


def _batch(facts: Facts) -> Verdict:
    marked = list(facts.context.batch_features)
    if not marked:
        return UNKNOWN, {"summary": "no feature is marked batch-eligible", "basis": "observed", "features": []}
    v = facts.values
    evidence = {"features": marked, "calls": v["known"], "batch_calls": v["good"]}
    if not v["known"]:
        return PASS, _observed("nothing to check: the marked features made no calls in the period", **evidence)
    live = v["known"] - v["good"]
    if live:
        return FAIL, _observed(f"{live:,} of {v['known']:,} calls of batch-eligible features were live", **evidence)
    return PASS, _observed(
        f"all {v['known']:,} calls of batch-eligible features went through the Batch API", **evidence
    )


def _request_ids(facts: Facts) -> Verdict:
    return _at_least(facts.values, Fraction(99, 100), "keep the x-request-id", "the request id")


def _ttft(facts: Facts) -> Verdict:
    return _at_least(
        facts.values,
        Fraction(99, 100),
        "report time to first token and exact usage",
        "how streams went",
        "no streamed call in the period",
    )


def _model_pinned(facts: Facts) -> Verdict:
    return _none_may(
        facts.values, "the requested model", "named a model alias", "name dated snapshots",
        "no generation call in the period",
    )  # fmt: skip


def _non_prod_traffic(facts: Facts) -> Verdict:
    v = facts.values
    environments = sorted(v["environments"] or [])
    evidence = {"non_production_calls": v["good"], "environments": environments, "no_environment_calls": v["no_env"]}
    if v["good"]:
        shown = ", ".join(environments[:5])
        return PASS, _observed(f"{v['good']:,} calls from non-production environments ({shown})", **evidence)
    unnamed = f" ({v['no_env']:,} calls name no environment)" if v["no_env"] else ""
    return FAIL, _observed(f"no call from a non-production environment{unnamed}", **evidence)


def _error_paths(facts: Facts) -> Verdict:
    v = facts.values
    evidence = {"non_production_calls": v["calls"], "errors_429_5xx": v["errors"], "retried_calls": v["retried"]}
    if not v["calls"]:
        return FAIL, _observed("no non-production traffic to exercise error paths", **evidence)
    summary = f"non-production traffic saw {v['errors']:,} calls end in 429/5xx and {v['retried']:,} retried calls"
    if v["errors"] and v["retried"]:
        return PASS, _observed(summary, **evidence)
    if not v["attempts_known"]:
        return UNKNOWN, _observed("non-production calls don't record retries (other instrumentations)", **evidence)
    return FAIL, _observed(summary + " (both wanted)", **evidence)


# --- fixes ----------------------------------------------------------------------------------------------------


def _fix(text: str, snippet: str | None = None, rule: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"text": text, "snippet": snippet, "rule": rule}


def _static(text: str, snippet: str | None = None) -> Callable[[Scope, Facts], dict[str, Any]]:
    return lambda scope, facts: _fix(text, snippet)


def _rule_filters(scope: Scope) -> dict[str, list[str]]:
    return {"service": [scope.service], "environment": scope.environments}


def _nice(value: float) -> float:
    """Round up to two significant digits (a threshold a person would pick)."""
    if value <= 0:
        return 0.0
    step = 10 ** (math.floor(math.log10(value)) - 1)
    return float(round(math.ceil(value / step) * step, 9))


def _budget_fix(scope: Scope, facts: Facts) -> dict[str, Any]:
    days = max((scope.end - scope.start).total_seconds() / 86400, 1.0)
    daily = float(facts.values.get("cost") or 0) / days
    rule = {"name": f"{scope.service}: daily spend", "metric": "cost", "window": "day", "op": ">",
            "threshold": _nice(2 * daily) or 10.0, "filters": _rule_filters(scope), "channels": []}  # fmt: skip
    return _fix("Alert when a UTC day's spend passes about twice the usual (add a Slack or webhook channel).",
                rule=rule)  # fmt: skip


def _alert_fix(text: str, name: str, **rule: Any) -> Callable[[Scope, Facts], dict[str, Any]]:
    def fix(scope: Scope, facts: Facts) -> dict[str, Any]:
        body = {"name": f"{scope.service}: {name}", **rule, "filters": _rule_filters(scope), "channels": []}
        if body["metric"] == "latency_p95_ms":
            p95 = facts.values.get("p95")
            body["threshold"] = _nice(2 * p95) if p95 else 10_000.0
        return _fix(text, rule=body)

    return fix


def _attest_fix(item_id: str, what: str) -> Callable[[Scope, Facts], dict[str, Any]]:
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


# --- the checklist ----------------------------------------------------------------------------------------------


ITEMS: tuple[Item, ...] = (
    Item(
        "eh.retries", "Retries on (max_retries above 0)", _retries,
        _static("Keep the SDK's automatic retries (2 by default; they back off on 408/409/429/5xx): never pass "
                "max_retries=0.", "client = OpenAI(max_retries=3)"),
        {"known": "count(*) FILTER (WHERE client_max_retries IS NOT NULL)",
         "bad": "count(*) FILTER (WHERE client_max_retries = 0)", "calls": "count(*)"},
        bad="client_max_retries = 0",
    ),
    Item(
        "eh.timeout", "Timeouts of 120 s or less", _timeout,
        _static("Set an explicit timeout of at most 120 s (the SDK's default is 600 s).",
                "client = OpenAI(timeout=60.0, max_retries=3)"),
        {"known": "count(*) FILTER (WHERE client_timeout_s IS NOT NULL)",
         "bad": "count(*) FILTER (WHERE client_timeout_s > 120)", "calls": "count(*)",
         "longest": "max(client_timeout_s)"},
        bad="client_timeout_s > 120",
    ),
    Item(
        "eh.error_rate", "Server error rate under 2%", _error_rate,
        _static("Retry 5xx with backoff (the SDK does), and degrade gracefully when they persist: a fallback "
                "model, a cached answer or a clear message.",
                "try:\n    answer = client.chat.completions.create(...)\nexcept openai.InternalServerError:\n"
                "    answer = fallback()"),
        {"bad": f"count(*) FILTER (WHERE {_SERVER_ERROR})", "calls": "count(*)",
         "unclassified": f"count(*) FILTER (WHERE {_UNCLASSIFIED})"},
        bad=_SERVER_ERROR, group=("model", _MODEL),
    ),
    Item(
        "eh.rate_limited", "Under 0.5% of calls still rate-limited after retries", _rate_limited,
        _static("Smooth bursts (a queue or token bucket), retry longer, move non-urgent work to the Batch API, "
                "or ask OpenAI for a higher rate limit.", "client = OpenAI(max_retries=5)"),
        {"bad": f"count(*) FILTER (WHERE {_RATE_LIMITED})", "calls": "count(*)",
         "unclassified": f"count(*) FILTER (WHERE {_UNCLASSIFIED})"},
        bad=_RATE_LIMITED,
    ),
    Item(
        "eh.truncation", "Under 1% of answers cut off at max tokens", _truncation,
        _static("Raise the token limit where answers are cut off (finish_reason 'length'), or ask for shorter "
                "answers; check finish_reason before using an answer.",
                "response = client.chat.completions.create(..., max_completion_tokens=2048)\n"
                "if response.choices[0].finish_reason == 'length':\n    ..."),
        {"known": "count(*) FILTER (WHERE finish_reason IS NOT NULL)",
         "bad": f"count(*) FILTER (WHERE {_TRUNCATED})",
         "unjudged": f"count(*) FILTER (WHERE finish_reason IS NULL AND status = 'ok' AND {_GENERATION})"},
        bad=_TRUNCATED,
    ),
    Item(
        "sec.content_off", "Prompt and completion content off, or redacted", _content,
        _static("Leave content capture off in production (the default), or keep it redacted.",
                "llmledger.instrument(capture_content=False)  # or unset LLMLEDGER_CAPTURE_CONTENT"),
        {"known": "count(*) FILTER (WHERE content_captured IS NOT NULL)",
         "bad": "count(*) FILTER (WHERE content_captured AND content_redacted IS NOT TRUE)", "calls": "count(*)"},
        bad="content_captured AND content_redacted IS NOT TRUE",
    ),
    Item(
        "sec.key_scope", "Project or service-account API keys only", _key_scope,
        _static("Use a project key (sk-proj-) or a service account key (sk-svcacct-) scoped to this app, never a "
                "user's or an admin key.", "client = OpenAI(api_key=os.environ['OPENAI_API_KEY'])  # sk-proj-..."),
        {"known": "count(*) FILTER (WHERE key_kind IS NOT NULL)",
         "bad": "count(*) FILTER (WHERE key_kind NOT IN ('project', 'service_account'))", "calls": "count(*)",
         "kinds": "histogram(key_kind) FILTER (WHERE key_kind IS NOT NULL)"},
        bad="key_kind NOT IN ('project', 'service_account')",
    ),
    Item(
        "sec.end_user", "At least 95% of calls identify the end user", _end_user,
        _static("Say whose request it is: OpenAI's safety_identifier (a hash, never an e-mail), or "
                "llmledger.attributes(user=...).",
                "with llmledger.attributes(user=current_user.id):\n"
                "    client.chat.completions.create(..., safety_identifier=hashed_user_id)"),
        {"known": "count(*) FILTER (WHERE user_set IS NOT NULL OR end_user IS NOT NULL)",
         "good": "count(*) FILTER (WHERE user_set OR end_user IS NOT NULL)",
         "unjudged": "count(*) FILTER (WHERE user_set IS NULL AND end_user IS NULL)"},
        bad="user_set = false AND end_user IS NULL",
    ),
    Item(
        "sec.collector_auth", "The collector requires tokens or listens on loopback only", _collector_auth,
        _static("Set LLMLEDGER_INGEST_TOKEN, LLMLEDGER_READ_TOKEN and LLMLEDGER_ADMIN_TOKEN (or the _FILE forms), "
                "or listen on 127.0.0.1."),
        observed=False,
    ),
    Item(
        "sec.no_secrets", "No API key in stored telemetry", _no_secrets,
        _static("Find where a key gets into a label (feature, tag, user) or an error message and remove it; rotate "
                "the key: it left the app.", "llmledger.attributes(feature='search')  # labels never hold secrets"),
    ),
    Item(
        "cost.max_tokens", "At least 99% of calls set max tokens", _max_tokens,
        _static("Cap every generation: max_completion_tokens (chat), max_output_tokens (Responses).",
                "client.chat.completions.create(..., max_completion_tokens=1024)"),
        {"known": f"count(*) FILTER (WHERE {_LIVE_GENERATION})",
         "good": f"count(*) FILTER (WHERE {_LIVE_GENERATION} AND max_tokens IS NOT NULL)",
         "unjudged": f"count(*) FILTER (WHERE NOT {_WRAPPER} AND {_GENERATION})"},
        bad=f"{_LIVE_GENERATION} AND max_tokens IS NULL",
    ),
    Item(
        "cost.budget_rule", "A spend or forecast alert covers the service", _rule_item(
            ("cost", "cost_forecast_month"), "budget"),
        _budget_fix, {"cost": "sum(cost_usd)"}, observed=False,
    ),
    Item(
        "cost.caching", "At least 20% of long prompts' input tokens cached", _caching,
        _static("Put the fixed part of prompts (instructions, examples, tools) first and the variable part last, "
                "so prompts of 1,024+ tokens share a cacheable prefix; a prompt_cache_key groups similar calls.",
                "client.chat.completions.create(messages=[SYSTEM, *EXAMPLES, user_message], "
                "prompt_cache_key='support-v3')"),
        {"known": "count(*) FILTER (WHERE input_tokens >= 1024 AND cached_input_tokens IS NOT NULL)",
         "input": "coalesce(sum(input_tokens) FILTER (WHERE input_tokens >= 1024 "
                  "AND cached_input_tokens IS NOT NULL), 0)",
         "cached": "coalesce(sum(cached_input_tokens) FILTER (WHERE input_tokens >= 1024), 0)",
         "unjudged": "count(*) FILTER (WHERE input_tokens >= 1024 AND cached_input_tokens IS NULL)"},
    ),
    Item(
        "cost.priced", "Every call priced", _priced,
        _static("Add the unpriced models to the collector's --prices overrides file (or update genai-prices).",
                "[[models]]\nmodel = \"my-model\"\ninput = 1.25  # USD per million tokens\noutput = 10.0"),
        {"bad": f"count(*) FILTER (WHERE {UNPRICED})"},
        bad=UNPRICED, group=("model", _MODEL),
    ),
    Item(
        "cost.batch", "Batch-eligible features use the Batch API", _batch,
        _static("Send non-interactive work (evaluations, backfills, nightly jobs) through the Batch API at half "
                "price; mark such features batch-eligible on the Readiness page.",
                "client.batches.create(input_file_id=file.id, endpoint='/v1/chat/completions', "
                "completion_window='24h')"),
        {"known": "count(*) FILTER (WHERE list_contains($batch_features, feature))",
         "good": "count(*) FILTER (WHERE list_contains($batch_features, feature) AND batch)"},
        bad="list_contains($batch_features, feature) AND batch IS NOT TRUE",
    ),
    Item(
        "mon.request_ids", "At least 99% of calls keep the request id", _request_ids,
        _static("Record x-request-id on every call (the llmledger wrapper does; log it with errors too) so "
                "OpenAI support can trace a call.", "llmledger.instrument()"),
        {"known": f"count(*) FILTER (WHERE {_WRAPPER} AND NOT (status = 'error' AND http_status IS NULL))",
         "good": f"count(*) FILTER (WHERE {_WRAPPER} AND NOT (status = 'error' AND http_status IS NULL) "
                 "AND request_id IS NOT NULL)",
         "unjudged": f"count(*) FILTER (WHERE NOT {_WRAPPER})"},
        bad=f"{_WRAPPER} AND NOT (status = 'error' AND http_status IS NULL) AND request_id IS NULL",
        group=("model", _MODEL),
    ),
    Item(
        "mon.ttft", "Streams report time to first token and usage", _ttft,
        _static("Ask streams for usage (stream_options include_usage: the wrapper adds it unless "
                "LLMLEDGER_STREAM_USAGE=false) and read them to the end.",
                "client.chat.completions.create(..., stream=True, stream_options={'include_usage': True})"),
        {"known": f"count(*) FILTER (WHERE stream AND status = 'ok' AND {_WRAPPER})",
         "good": f"count(*) FILTER (WHERE stream AND status = 'ok' AND {_WRAPPER} AND ttft_ms IS NOT NULL "
                 "AND input_tokens IS NOT NULL AND usage_estimated IS NOT TRUE)",
         "unjudged": f"count(*) FILTER (WHERE stream AND status = 'ok' AND NOT {_WRAPPER})"},
        bad=f"stream AND status = 'ok' AND {_WRAPPER} AND (ttft_ms IS NULL OR input_tokens IS NULL "
            "OR usage_estimated IS TRUE)",
    ),
    Item(
        "mon.error_alert", "An error alert covers the service", _rule_item(("error_rate", "errors"), "error"),
        _alert_fix("Alert on the error rate.", "error rate", metric="error_rate", window="5m", op=">",
                   threshold=0.05, min_requests=20, **{"for": "5m"}),
        observed=False,
    ),
    Item(
        "mon.latency_alert", "A latency alert covers the service",
        _rule_item(("latency_p95_ms", "latency_p99_ms", "ttft_p95_ms"), "latency"),
        _alert_fix("Alert when p95 latency passes about twice the period's.", "p95 latency", metric="latency_p95_ms",
                   window="5m", op=">", threshold=10_000.0, min_requests=20, **{"for": "10m"}),
        {"p95": "quantile_cont(duration_ms, 0.95)"}, observed=False,
    ),
    Item(
        "mon.ratelimit_alert", "A rate-limit headroom alert covers the service",
        _rule_item(("ratelimit_headroom_requests_pct", "ratelimit_headroom_tokens_pct"), "rate-limit"),
        _alert_fix("Alert before the rate limit is reached.", "rate-limit headroom",
                   metric="ratelimit_headroom_requests_pct", window="5m", op="<", threshold=10.0),
        observed=False,
    ),
    Item(
        "test.model_pinned", "Production pins dated model snapshots", _model_pinned,
        _static("Name a dated snapshot so a model update can't change answers under you; move to a new one after "
                "testing it.", "client.chat.completions.create(model='gpt-4o-2024-08-06', ...)  # not 'gpt-4o'"),
        {"known": f"count(*) FILTER (WHERE request_model IS NOT NULL AND {_GENERATION})",
         "bad": f"count(*) FILTER (WHERE request_model IS NOT NULL AND {_GENERATION} AND NOT {_PINNED})",
         "calls": f"count(*) FILTER (WHERE {_GENERATION})"},
        bad=f"request_model IS NOT NULL AND {_GENERATION} AND NOT {_PINNED}", group=("model", "request_model"),
    ),
    Item(
        "test.non_prod_traffic", "Traffic from a non-production environment", _non_prod_traffic,
        _static("Run the app in staging or CI with the same instrumentation, naming the environment.",
                "OTEL_RESOURCE_ATTRIBUTES=deployment.environment.name=staging"),
        {"good": f"count(*) FILTER (WHERE {_NON_PROD})", "no_env": "count(*) FILTER (WHERE environment IS NULL)",
         "environments": f"list(DISTINCT environment) FILTER (WHERE {_NON_PROD})"},
        calls="all",
    ),
    Item(
        "test.error_paths", "Non-production traffic exercised 429/5xx and retries", _error_paths,
        _static("In staging, inject failures (a fake or proxy answering 429 and 500) and check the app retries and "
                "recovers.", "fake.enqueue(Reply(status=429, headers={'retry-after-ms': '10'}))"),
        {"calls": f"count(*) FILTER (WHERE {_NON_PROD})", "errors": f"count(*) FILTER (WHERE {_NON_PROD_ERROR})",
         "retried": f"count(*) FILTER (WHERE {_NON_PROD} AND attempts > 1)",
         "attempts_known": f"count(*) FILTER (WHERE {_NON_PROD} AND attempts IS NOT NULL)"},
        calls="all",
    ),
    Item(
        "test.load", "Load tested at expected peak (attested)", _attested("test.load"),
        _attest_fix("test.load", "Load-test at the expected peak (rate limits, latency, cost)"), observed=False,
    ),
    Item(
        "test.mocked", "Tests run against a mocked OpenAI API (attested)", _attested("test.mocked"),
        _attest_fix("test.mocked", "Run the test suite against a fake OpenAI API (no network, no spend)"),
        observed=False,
    ),
)  # fmt: skip
ITEM_IDS = tuple(item.id for item in ITEMS)


# --- queries --------------------------------------------------------------------------------------------------


def _bind(sql: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """The named parameters `sql` uses (DuckDB refuses unused ones)."""
    return {name: value for name, value in params.items() if f"${name}" in sql}


def _params(scope: Scope, context: Context) -> dict[str, Any]:
    return {
        "service": scope.service,
        "start": scope.start,
        "end": scope.end,
        "environments": scope.environments,
        "production": list(scope.production_environments),
        "batch_features": list(context.batch_features),
    }


def _where(calls: str) -> str:
    where = "service = $service AND start_time >= $start AND start_time < $end"
    return f"{where} AND list_contains($environments, environment)" if calls == "production" else where


def _aggregate(con: Any, scope: Scope, context: Context, calls: str, by_day: bool) -> dict[date | None, dict[str, Any]]:
    """Every aggregate of the items judged on `calls`, for the whole period or per UTC day."""
    names, sqls = ["calls"], ["count(*)"]
    for item in ITEMS:
        if item.calls == calls:
            for name, sql in item.aggregates.items():
                names.append(f"{item.id}:{name}")
                sqls.append(sql)
    day = f"{UTC_DAY} AS day, " if by_day else "NULL AS day, "
    sql = f"SELECT {day}{', '.join(sqls)} FROM llm_calls WHERE {_where(calls)}{' GROUP BY day' if by_day else ''}"
    rows = con.execute(sql, _bind(sql, _params(scope, context))).fetchall()
    return {row[0]: dict(zip(names, row[1:], strict=True)) for row in rows}


def _secrets(con: Any, scope: Scope, by_day: bool) -> dict[date | None, dict[str, int]]:
    day = f"{UTC_DAY}" if by_day else "NULL"
    sql = (
        f"SELECT {day} AS day, column_name, count(*) FROM scrubbed_secrets WHERE service = $service "
        "AND start_time >= $start AND start_time < $end AND list_contains($environments, environment) "
        "GROUP BY ALL ORDER BY ALL"
    )
    found: dict[date | None, dict[str, int]] = {}
    params = {"service": scope.service, "start": scope.start, "end": scope.end, "environments": scope.environments}
    for day_value, column, count in con.execute(sql, params).fetchall():
        found.setdefault(day_value, {})[column] = count
    return found


def _details(con: Any, scope: Scope, context: Context, item: Item) -> dict[str, Any]:
    """The groups with the most calls breaking the rule, and the newest request ids of such calls."""
    key, group_sql = item.group
    sql = (
        f"SELECT {group_sql} AS grp, count(*) AS n, arg_max(request_id, start_time, 3) FILTER "
        f"(WHERE request_id IS NOT NULL) FROM llm_calls WHERE {_where(item.calls)} "
        f"AND ({item.bad}) GROUP BY grp ORDER BY n DESC, grp NULLS LAST LIMIT 3"
    )
    rows = con.execute(sql, _bind(sql, _params(scope, context))).fetchall()
    examples = [request_id for _, _, ids in rows for request_id in (ids or [])][:3]
    return {"worst": [{key: group, "calls": n} for group, n, _ in rows], "example_request_ids": examples}


def _facts(
    scope: Scope, context: Context, aggregates: Mapping[str, dict[str, Any]], secrets: Mapping[str, int],
    as_of: datetime | None,
) -> Facts:  # fmt: skip
    values = {**aggregates["production"], **aggregates["all"]}
    calls = {kind: aggregates[kind].get("calls", 0) for kind in ("production", "all")}
    return Facts(scope, context, values, calls, secrets, as_of)


def _own(item: Item, facts: Facts) -> Facts:
    """`facts` with only `item`'s aggregates, under their own names."""
    prefix = f"{item.id}:"
    values = {name[len(prefix) :]: value for name, value in facts.values.items() if name.startswith(prefix)}
    return Facts(facts.scope, facts.context, values, facts.calls, facts.secrets, facts.as_of)


def judge(item: Item, facts: Facts) -> Verdict:
    """One item's status and evidence (unknown for an observed item with no calls to look at)."""
    if item.observed and not facts.calls[item.calls]:
        where = f"{facts.scope.described} calls" if item.calls == "production" else "calls in any environment"
        return UNKNOWN, {"summary": f"no {where} of {facts.scope.service} in the period", "basis": "observed",
                         "calls": 0}  # fmt: skip
    return item.judge(_own(item, facts))


def band(score: int) -> str:
    return "production ready" if score >= 20 else "needs improvement" if score >= 15 else "not ready"


def scorecard(con: Any, scope: Scope, context: Context) -> dict[str, Any]:
    """The whole card (see the API's `GET /api/v1/readiness`); the current rules and attestations count."""
    aggregates = {kind: _aggregate(con, scope, context, kind, False).get(None, {}) for kind in ("production", "all")}
    facts = _facts(scope, context, aggregates, _secrets(con, scope, False).get(None, {}), None)
    categories = []
    for category, name in CATEGORIES:
        items = []
        for item in (item for item in ITEMS if item.category == category):
            status, evidence = judge(item, facts)
            if status == FAIL and item.bad is not None:
                evidence.update(_details(con, scope, context, item))
            fix = item.fix(scope, _own(item, facts))
            items.append({"id": item.id, "title": item.title, "status": status, "evidence": _jsonable(evidence),
                          "fix": fix})  # fmt: skip
        score = sum(entry["status"] == PASS for entry in items)
        categories.append({"name": name, "score": score, "max": 5, "items": items})
    score = sum(category["score"] for category in categories)
    unknown = sum(entry["status"] == UNKNOWN for category in categories for entry in category["items"])
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
    per_kind = {kind: _aggregate(con, scope, context, kind, True) for kind in ("production", "all")}
    secrets = _secrets(con, scope, True)
    points = []
    for day in sorted(per_kind["all"]):
        start = datetime(day.year, day.month, day.day, tzinfo=UTC)
        end = start + timedelta(days=1)
        day_scope = Scope(scope.service, start, end, scope.environment, scope.production_environments)
        aggregates = {kind: per_kind[kind].get(day, {}) for kind in per_kind}
        facts = _facts(day_scope, context, aggregates, secrets.get(day, {}), end)
        score = sum(judge(item, facts)[0] == PASS for item in ITEMS)
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
