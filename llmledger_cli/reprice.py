"""`llmledger reprice --api URL --from --to [--dry-run]`: have the collector price a range again."""

from __future__ import annotations

import argparse

from llmledger_cli import collector_client


def add_arguments(parser: argparse.ArgumentParser) -> None:
    collector_client.add_connection_arguments(parser, "admin")
    parser.add_argument("--from", dest="start", required=True, help="RFC 3339 time or date (UTC), inclusive")
    parser.add_argument("--to", dest="end", required=True, help="RFC 3339 time or date (UTC), exclusive")
    parser.add_argument("--dry-run", action="store_true", help="report what would change, change nothing")


def main(args: argparse.Namespace) -> int:
    params = {"from": args.start, "to": args.end, "dry_run": "true" if args.dry_run else "false"}
    try:
        response = collector_client.call(args, "POST", "/api/v1/reprice", kinds=("admin",), timeout=3600, params=params)
    except collector_client.CallError as error:
        return error.report("reprice")
    run = response.json()
    verb = "would change" if run["dry_run"] else "changed"
    print(
        f"{run['rows_seen']:,} calls priced with {run['price_version']}: {verb} {run['rows_changed']:,} "
        f"({run['costs_changed']:,} in cost); "
        f"total {run['old_total_usd']} → {run['new_total_usd']} USD (difference {run['difference_usd']}) "
        f"[run {run['run_id']}]"
    )
    for change in run.get("by_model", []):  # a collector before per-model diffs sends none
        print(
            f"  {change['model'] or '(no model)'}: {verb} {change['rows_changed']:,} "
            f"({change['costs_changed']:,} in cost), {change['old_usd']} → {change['new_usd']} USD"
        )
    return 0
