"""`llmledger check`: a service's readiness scorecard from a running collector, as text, JSON or Markdown (for a pull
request); exits 1 when the score is below `--min-score`, so CI can gate a deploy on it, and 2 when it can't tell
(no token, collector unreachable or refusing)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from llmledger_cli import collector_client

TIMEOUT_SECONDS = 120
MARKS = {"pass": "✅", "fail": "❌", "unknown": "❔"}
TEXT_MARKS = {"pass": "PASS", "fail": "FAIL", "unknown": "  ? "}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    collector_client.add_connection_arguments(parser, "read")
    parser.add_argument("--service", required=True, help="the service (service.name) to score")
    parser.add_argument("--environment", help="score this environment only (default: the production ones)")
    parser.add_argument("--from", dest="start", help="RFC 3339 time or date (UTC), inclusive (default: 7 days ago)")
    parser.add_argument("--to", dest="end", help="RFC 3339 time or date (UTC), exclusive (default: now)")
    parser.add_argument("--min-score", type=int, default=0, help="exit 1 when the score is below this (0-25)")
    parser.add_argument("--format", choices=("text", "json", "markdown"), default="text", help="output format")


def main(args: argparse.Namespace) -> int:
    params = {
        name: value
        for name, value in (("service", args.service), ("environment", args.environment), ("from", args.start),
                            ("to", args.end))
        if value
    }  # fmt: skip
    try:
        response = collector_client.call(
            args, "GET", "/api/v1/readiness", kinds=("read", "admin"), timeout=TIMEOUT_SECONDS, params=params
        )
    except collector_client.CallError as error:
        error.exit_code = 2  # exit 1 means "below --min-score": anything else that stops the check is 2
        return error.report("check")
    card = response.json()
    print({"json": lambda c: json.dumps(c, indent=2), "markdown": markdown, "text": text}[args.format](card))
    if card["score"] < args.min_score:
        print(f"llmledger check: score {card['score']} is below --min-score {args.min_score}", file=sys.stderr)
        return 1
    return 0


def _headline(card: dict[str, Any]) -> str:
    where = card["environment"] or "production"
    unknown = f", {card['unknown']} unknown" if card["unknown"] else ""
    return (
        f"{card['service']} ({where}), {card['from'][:10]} to {card['to'][:10]}: "
        f"{card['score']}/{card['max']} {card['band']}{unknown}"
    )


def text(card: dict[str, Any]) -> str:
    """The scorecard for a terminal: one line per item, the fix under each item that didn't pass."""
    lines = [_headline(card)]
    for category in card["categories"]:
        lines.append(f"\n{category['name']}: {category['score']}/{category['max']}")
        for item in category["items"]:
            advice = " (advice, not scored)" if item.get("advice") else ""
            lines.append(f"  {TEXT_MARKS[item['status']]}  {item['id']:<22} {item['evidence']['summary']}{advice}")
            if item["status"] != "pass":
                examples = item["evidence"].get("example_request_ids")
                if examples:
                    lines.append(f"{'':30}examples: {', '.join(examples)}")
                lines.append(f"{'':30}fix: {item['fix']['text']}")
    return "\n".join(lines)


def _cell(value: str) -> str:
    return value.replace("|", "\\|").replace("\n", " ")


def markdown(card: dict[str, Any]) -> str:
    """The scorecard for a pull request: a table per category, then the fixes of the items that didn't pass."""
    lines = [f"## LLM production readiness: {_cell(_headline(card))}", ""]
    fixes: list[str] = []
    for category in card["categories"]:
        lines += [f"### {category['name']}: {category['score']}/{category['max']}", "", "| | Item | Evidence |",
                  "|---|---|---|"]  # fmt: skip
        for item in category["items"]:
            mark = MARKS[item["status"]]
            evidence = item["evidence"]["summary"]
            if item["evidence"].get("basis") == "attested":
                evidence += " *(attested, not observed)*" if item["status"] == "pass" else ""
            title = item["title"] + (" (advice, not scored)" if item.get("advice") else "")
            lines.append(f"| {mark} | `{item['id']}` {_cell(title)} | {_cell(evidence)} |")
            if item["status"] != "pass":
                fixes.append(_fix_markdown(item))
        lines.append("")
    if fixes:
        lines += ["### Fixes", "", *fixes]
    return "\n".join(lines).rstrip() + "\n"


def _fix_markdown(item: dict[str, Any]) -> str:
    fix = item["fix"]
    parts = [f"- {MARKS[item['status']]} **`{item['id']}`**: {fix['text']}"]
    if fix.get("snippet"):
        parts.append(_indented_block("", fix["snippet"]))
    if fix.get("rule"):
        parts.append("  Alert rule to create (`POST /api/v1/alert-rules`):")
        parts.append(_indented_block("json", json.dumps(fix["rule"], indent=2)))
    return "\n".join(parts)


def _indented_block(language: str, body: str) -> str:
    lines = [f"```{language}", *body.splitlines(), "```"]
    return "\n".join(f"  {line}" for line in lines)
