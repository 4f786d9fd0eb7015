"""The judges of the advice items built on the wrapper's content signals (llmledger/wrapper/signals.py): input
sanitisation, output safety, structured output, the tool-use loop, connection pooling and context tracking.

Only calls that carry the signals are judged (`signals_version` set); calls without them (signals off, an older
wrapper, another instrumentation) make an item unknown when nothing else is known, never a pass.
"""

from __future__ import annotations

from collections.abc import Mapping
from fractions import Fraction
from typing import Any

from collector.readiness.evidence import at_least, none_may, observed, pct, share, unjudged_note
from collector.readiness.model import FAIL, PASS, UNKNOWN, Facts, Verdict


def _rate_under_1pct(v: Mapping[str, Any], what: str, nothing: str, **evidence: Any) -> Verdict:
    """`bad` of `known` under 1%; pass when nothing applies, unknown when no generation call records the signals
    (`signalled`) and some (`unjudged`) could have been ones the rule applies to."""
    bad, known, unjudged = v["bad"], v["known"], v["unjudged"]
    evidence = {"judged": known, "breaking": bad, "rate": share(bad, known), "limit": 0.01, **evidence}
    if not known:
        if unjudged and not v["signalled"]:
            return UNKNOWN, observed(f"{unjudged:,} calls don't record content signals", **evidence)
        return PASS, observed(f"nothing to check: {nothing}{unjudged_note(unjudged)}", **evidence)
    status = FAIL if bad * 100 >= known else PASS
    summary = f"{bad:,} of {known:,} {what} ({pct(bad, known)}; under 1% wanted)"
    return status, observed(summary + unjudged_note(unjudged), **evidence)


def input_sanitised(facts: Facts) -> Verdict:
    """No special-token string reaches the API; injection phrases, delimiting and system messages are evidence."""
    v = facts.values
    status, evidence = none_may(
        v, "content signals", "sent special-token strings (<|...|>)", "sent no special-token string",
        "no generation call in the period",
    )  # fmt: skip
    evidence.update(
        injection_phrase_calls=v["injection_calls"], injection_phrases=v["injection_phrases"],
        user_delimited_share=share(v["delimited"], v["user_known"]),
        system_message_share=share(v["system"], v["system_known"]), pattern_versions=sorted(v["versions"] or []),
    )  # fmt: skip
    if v["injection_calls"]:
        evidence["summary"] += f"; {v['injection_calls']:,} calls carried injection phrases (counted, not blocked)"
    return status, evidence


def output_safety(facts: Facts) -> Verdict:
    """No answer holding PII patterns without a moderation call before it (same trace or request scope)."""
    v = facts.values
    status, evidence = none_may(
        v, "content signals", "returned PII patterns with no moderation call before them",
        "returned no PII pattern unmoderated", "no generation call in the period",
    )  # fmt: skip
    evidence.update(
        pii_calls=v["pii_calls"], pii_matches=v["pii_matches"], refusals=v["refusals"],
        moderated_share=share(v["moderated"], v["known"]),
    )  # fmt: skip
    return status, evidence


def structured_output(facts: Facts) -> Verdict:
    v = facts.values
    return _rate_under_1pct(
        v, "JSON answers failed validation or were cut off", "no call asked for a JSON answer",
        json_schema_calls=v["schema"], parse_failed=v["parse_failed"], json_truncated=v["truncated"],
        refusals=v["refusals"],
    )  # fmt: skip


def tool_loop(facts: Facts) -> Verdict:
    v = facts.values
    return _rate_under_1pct(
        v, "tool-using calls sent a result matching no call, left a call unanswered or offered an undescribed tool",
        "no call offered tools or sent tool results", unmatched_results=v["unmatched"],
        unanswered_calls=v["unanswered"], undescribed_tools=v["undescribed"],
        tool_choice_share=share(v["choice_set"], v["offered"]),
    )  # fmt: skip


def connection_pooling(facts: Facts) -> Verdict:
    """At least half the calls reuse a client's connection pool; a single new client passes whatever the count (every
    process makes its first one)."""
    v = facts.values
    verdict = at_least(v, Fraction(1, 2), "reused their client's connection pool", "whether the client is reused")
    verdict[1]["new_client_calls"] = v["new_clients"]
    if verdict[0] == FAIL and v["new_clients"] <= 1:
        return PASS, {**verdict[1], "summary": f"one client served all {v['known']:,} calls"}
    return verdict


def context_used(facts: Facts) -> Verdict:
    v = facts.values
    return _rate_under_1pct(
        v, "calls filled 80% or more of the context window with user input", "no call with user input",
        p95_pct=v["p95"], max_pct=v["max"],
    )  # fmt: skip
