"""`llmledger reprice --api URL --from --to [--dry-run]`: have the collector price a range again."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import httpx2

from llmledger.credentials import TokenError, client_token


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--api", default="http://127.0.0.1:4318", help="the collector's base URL")
    parser.add_argument("--from", dest="start", required=True, help="RFC 3339 time or date (UTC), inclusive")
    parser.add_argument("--to", dest="end", required=True, help="RFC 3339 time or date (UTC), exclusive")
    parser.add_argument("--dry-run", action="store_true", help="report what would change, change nothing")
    parser.add_argument("--token-file", type=Path, help="file holding the admin token (default $LLMLEDGER_ADMIN_TOKEN)")


def main(args: argparse.Namespace) -> int:
    try:
        token = client_token("admin", token_file=args.token_file)
    except TokenError as exc:
        print(f"llmledger reprice: {exc}", file=sys.stderr)
        return 2
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    params = {"from": args.start, "to": args.end, "dry_run": "true" if args.dry_run else "false"}
    try:
        response = httpx2.post(f"{args.api.rstrip('/')}/api/v1/reprice", params=params, headers=headers, timeout=3600)
    except httpx2.TransportError as exc:
        print(f"llmledger reprice: cannot reach the collector at {args.api}: {exc}", file=sys.stderr)
        return 1
    if response.status_code != 200:
        print(f"llmledger reprice: the collector answered {response.status_code}: {response.text}", file=sys.stderr)
        return 1
    run = response.json()
    verb = "would change" if run["dry_run"] else "changed"
    print(
        f"{run['rows_seen']:,} calls priced with {run['price_version']}: {verb} {run['rows_changed']:,} "
        f"({run['costs_changed']:,} in cost); "
        f"total {run['old_total_usd']} → {run['new_total_usd']} USD (difference {run['difference_usd']}) "
        f"[run {run['run_id']}]"
    )
    return 0
