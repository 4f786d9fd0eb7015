"""What a channel is told, whatever the channel: an alert's state change, a test, or a report (a digest)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

# How each state reads at the head of a message, in every channel (alerts: by severity too).
_HEADLINES = {"resolved": "RESOLVED", "test": "TEST NOTIFICATION", "report": "REPORT"}


@dataclass(frozen=True)
class Image:
    """A PNG (a digest's chart): inline in an e-mail; channels that carry text only leave it out."""

    png: bytes
    alt: str
    filename: str = "chart.png"


@dataclass(frozen=True)
class Message:
    """One notification, channel-neutral; each channel renders it in its own shape.

    An alert fills `data` (the generic webhook's JSON, unchanged from before channels were modules) and `dedup_key`
    (what PagerDuty opens and closes); a report (a digest) leaves `dedup_key` empty and may carry `body`, `html` and
    an `image`."""

    title: str  # "High spend [team=search]": the rule and the group whose state changed, or the report's name
    summary: str  # one sentence: "cost over day is 12.5 (> 10) for team=search."
    state: str = "report"  # "firing", "resolved", "test" or "report"
    severity: str = "info"  # "critical", "warning" or "info"
    link: str | None = None  # the dashboard page to open
    facts: tuple[tuple[str, str], ...] = ()  # short name → value lines (metric, value, threshold, group…)
    body: str | None = None  # longer plain text after the summary (a report's lines)
    html: str | None = None  # e-mail only: the HTML version of `body` (else `body`, escaped)
    image: Image | None = None
    data: Mapping[str, Any] = field(default_factory=dict)  # the JSON the webhooks send (else built from the above)
    dedup_key: str | None = None  # the alert this opens or closes (PagerDuty); None: not an alert
    source: str = "llmledger"  # where it happened (PagerDuty's payload.source)

    @property
    def headline(self) -> str:
        """`FIRING (critical)`, `FIRING (warning)`, `RESOLVED`, `TEST NOTIFICATION` or `REPORT`."""
        if self.state == "firing":
            return f"FIRING ({self.severity})"
        return _HEADLINES.get(self.state, self.state.upper())

    def json(self) -> dict[str, Any]:
        """The webhooks' JSON body: the alert's own payload, or the message's parts."""
        if self.data:
            return dict(self.data)
        return {"title": self.title, "state": self.state, "severity": self.severity, "summary": self.summary,
                "body": self.body, "facts": dict(self.facts), "link": self.link}  # fmt: skip

    def plain_text(self) -> str:
        """Every part as plain text: headline and title, summary, facts, body, link."""
        lines = [f"{self.headline}: {self.title}", "", self.summary]
        if self.facts:
            lines += ["", *(f"{name}: {value}" for name, value in self.facts)]
        if self.body:
            lines += ["", self.body]
        if self.link:
            lines += ["", f"Open the dashboard: {self.link}"]
        return "\n".join(lines) + "\n"
