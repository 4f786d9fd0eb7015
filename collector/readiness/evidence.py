"""Verdicts from an observed item's counts: shares, percentages, and the three rule shapes most items share."""

from __future__ import annotations

from collections.abc import Mapping
from fractions import Fraction
from typing import Any

from collector.readiness.model import FAIL, PASS, UNKNOWN, Verdict

# `unknown` means no evidence, never a guess: only calls whose instrumentation records the signal are judged, and
# the evidence says how many were not. A rule with nothing to apply to passes, saying so.


def pct(part: int | float, whole: int | float) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "-"


def share(part: int | float, whole: int | float) -> float | None:
    return round(part / whole, 4) if whole else None


def observed(summary: str, **evidence: Any) -> dict[str, Any]:
    return {"summary": summary, "basis": "observed", **evidence}


def unjudged_note(unjudged: int) -> str:
    return f"; {unjudged:,} calls don't record it (other instrumentations)" if unjudged else ""


def none_may(v: Mapping[str, Any], what: str, bad_text: str, ok_text: str, applies: str | None = None) -> Verdict:
    """No judged call may break the rule (`bad` of `known`); unknown when no call records the signal (or pass when
    there is no call the rule `applies` to)."""
    bad, known, calls = v["bad"], v["known"], v["calls"]
    evidence = {"calls": calls, "judged": known, "breaking": bad}
    if bad:
        return FAIL, observed(f"{bad:,} of {known:,} calls {bad_text}", **evidence)
    if not calls and applies is not None:
        return PASS, observed(f"nothing to check: {applies}", **evidence)
    if not known:
        return UNKNOWN, observed(f"no call records {what} (other instrumentations don't)", **evidence)
    return PASS, observed(f"all {known:,} calls {ok_text}{unjudged_note(calls - known)}", **evidence)


def at_least(v: Mapping[str, Any], minimum: Fraction, what: str, signal: str, applies: str | None = None) -> Verdict:
    """At least `minimum` of the judged calls (`good` of `known`) do `what`; unknown when no call records `signal`
    (or pass when there is nothing the rule `applies` to)."""
    good, known, unjudged = v["good"], v["known"], v.get("unjudged", 0)
    evidence = {"judged": known, "meeting": good, "share": share(good, known), "minimum": float(minimum)}
    if not known:
        if applies is not None and not unjudged:
            return PASS, observed(f"nothing to check: {applies}", **evidence)
        return UNKNOWN, observed(f"no call records {signal}{unjudged_note(unjudged)}", **evidence)
    summary = f"{pct(good, known)} of {known:,} calls {what} (at least {float(minimum * 100):g}% wanted)"
    status = PASS if good * minimum.denominator >= minimum.numerator * known else FAIL
    return status, observed(summary + unjudged_note(unjudged), **evidence)


def rate_below(v: Mapping[str, Any], limit: Fraction, what: str) -> Verdict:
    """`bad` of `calls` under `limit`; errors of unknown kind (`unclassified`) could tip it: then unknown."""
    bad, calls, unclassified = v["bad"], v["calls"], v["unclassified"]
    evidence = {"calls": calls, "matching": bad, "rate": share(bad, calls), "limit": float(limit)}
    if unclassified:
        evidence["unclassified_errors"] = unclassified
    summary = f"{bad:,} of {calls:,} calls {what} ({pct(bad, calls)}; under {float(limit * 100):g}% wanted)"
    if bad * limit.denominator >= limit.numerator * calls:
        return FAIL, observed(summary, **evidence)
    if (bad + unclassified) * limit.denominator >= limit.numerator * calls:
        return UNKNOWN, observed(f"{summary}, but {unclassified:,} errors of unknown kind could be", **evidence)
    return PASS, observed(summary, **evidence)
