"""`llmledger reconcile`: have the running collector pull OpenAI's costs and usage for whole UTC days (with its own
admin key), then print ours against OpenAI's per day and the untracked spend."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import httpx2

from llmledger.credentials import TokenError, client_token

TIMEOUT_SECONDS = 600  # a year of hourly usage is a few dozen pages from OpenAI


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--api", default="http://127.0.0.1:4318", help="the running collector's base URL")
    parser.add_argument(
        "--from", dest="start", metavar="DAY", help="first UTC day, YYYY-MM-DD (default: the scheduled pull's days)"
    )
    parser.add_argument(
        "--to", dest="end", metavar="DAY", help="day after the last, YYYY-MM-DD, exclusive (default: tomorrow)"
    )
    parser.add_argument("--token-file", type=Path, help="file holding the admin token (default $LLMLEDGER_ADMIN_TOKEN)")


def main(args: argparse.Namespace) -> int:
    try:
        token = client_token("admin", token_file=args.token_file)
    except TokenError as exc:
        print(f"llmledger reconcile: {exc}", file=sys.stderr)
        return 2
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    params = {name: value for name, value in (("from", args.start), ("to", args.end)) if value}
    api = args.api.rstrip("/")
    try:
        with httpx2.Client(base_url=api, headers=headers, timeout=TIMEOUT_SECONDS) as http:
            pulled = http.post("/api/v1/reconcile", params=params)
            if pulled.status_code != 200:
                failed = "the pull from OpenAI failed" if pulled.status_code == 502 else "the collector answered"
                print(f"llmledger reconcile: {failed} ({pulled.status_code}): {_error(pulled)}", file=sys.stderr)
                return 1
            run = pulled.json()
            compared = http.get("/api/v1/reconciliation", params={"from": run["from_day"], "to": run["to_day"]})
    except httpx2.TransportError as exc:
        print(f"llmledger reconcile: cannot reach the collector at {api}: {exc}", file=sys.stderr)
        return 1
    print(
        f"pulled {run['from_day']} up to {run['to_day']} (exclusive) from OpenAI: "
        f"{run['cost_rows']} cost rows, {run['usage_rows']} usage rows"
    )
    if compared.status_code == 200:
        print(report(compared.json()))
    return 0


def report(answer: dict[str, Any]) -> str:
    """Ours against OpenAI's per day, then the untracked spend by line item, as plain text."""
    lines = [f"{'day (UTC)':<12}{'ours (USD)':>18}{'OpenAI (USD)':>18}{'gap (USD)':>18}{'gap %':>9}"]
    for row in answer["rows"]:
        pct = row["diff_pct"] if row["diff_pct"] is not None else "-"
        lines.append(
            f"{row['day']:<12}{row['our_cost_usd']:>18}{row['openai_cost_usd'] or 'not pulled':>18}"
            f"{row['diff_usd'] or '-':>18}{pct:>9}"
        )
    if answer["untracked"]:
        lines.append(
            f"untracked spend (billed by OpenAI, seen by no instrumented call): {answer['totals']['untracked_usd']}"
        )
        for item in answer["untracked"]:
            lines.append(f"  {item['day']}  {item['untracked_usd']:>16}  {item['line_item'] or '(no line item)'}")
    return "\n".join(lines)


def _error(response: httpx2.Response) -> str:
    try:
        body = response.json()
        named = f" ({body['parameter']})" if body.get("parameter") else ""
        return f"{body['error']}{named}"
    except (ValueError, KeyError, TypeError, AttributeError):
        return json.dumps(response.text[:200])
