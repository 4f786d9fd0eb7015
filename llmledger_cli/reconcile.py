"""`llmledger reconcile`: have the running collector pull OpenAI's costs and usage for whole UTC days (with its own
admin key), then print ours against OpenAI's per day and the untracked spend."""

from __future__ import annotations

import argparse
from typing import Any

from llmledger_cli import collector_client

TIMEOUT_SECONDS = 600  # a year of hourly usage is a few dozen pages from OpenAI


def add_arguments(parser: argparse.ArgumentParser) -> None:
    collector_client.add_connection_arguments(parser, "admin")
    parser.add_argument(
        "--from", dest="start", metavar="DAY", help="first UTC day, YYYY-MM-DD (default: the scheduled pull's days)"
    )
    parser.add_argument(
        "--to", dest="end", metavar="DAY", help="day after the last, YYYY-MM-DD, exclusive (default: tomorrow)"
    )


def main(args: argparse.Namespace) -> int:
    params = {name: value for name, value in (("from", args.start), ("to", args.end)) if value}
    try:
        run = collector_client.call(
            args, "POST", "/api/v1/reconcile", kinds=("admin",), timeout=TIMEOUT_SECONDS, params=params
        ).json()
        days = {"from": run["from_day"], "to": run["to_day"]}
        compared = collector_client.call(
            args, "GET", "/api/v1/reconciliation", kinds=("admin",), timeout=TIMEOUT_SECONDS, params=days
        ).json()
    except collector_client.CallError as error:
        if error.response is not None and error.response.status_code == 502:
            error.message = f"the pull from OpenAI failed (502): {collector_client.error_text(error.response)}"
        return error.report("reconcile")
    print(
        f"pulled {run['from_day']} up to {run['to_day']} (exclusive) from OpenAI: "
        f"{run['cost_rows']} cost rows, {run['usage_rows']} usage rows"
    )
    print(report(compared))
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
            outside = " (billed outside calls)" if item.get("kind") == "outside_calls" else ""
            lines.append(
                f"  {item['day']}  {item['untracked_usd']:>16}  {item['line_item'] or '(no line item)'}{outside}"
            )
    return "\n".join(lines)
