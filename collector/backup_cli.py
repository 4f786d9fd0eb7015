"""`llmledger backup` (asks the running collector to write a backup) and `llmledger restore` (collector stopped)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import httpx2

from llmledger.credentials import TokenError, client_token


def add_backup_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--api", default="http://127.0.0.1:4318", help="the running collector's base URL")
    parser.add_argument("--to", required=True, type=Path, help="a new or empty folder on the collector's machine")
    parser.add_argument("--token-file", type=Path, help="file holding the admin token (default $LLMLEDGER_ADMIN_TOKEN)")


def add_restore_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db", required=True, type=Path, help="the database file to create (must not exist)")
    parser.add_argument("--from", dest="source", required=True, type=Path, help="a folder written by `backup`")


def backup_main(args: argparse.Namespace) -> int:
    try:
        token = client_token("admin", token_file=args.token_file)
    except TokenError as exc:
        print(f"llmledger backup: {exc}", file=sys.stderr)
        return 2
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    target = str(args.to.expanduser().absolute())
    try:
        response = httpx2.post(
            f"{args.api.rstrip('/')}/api/v1/backup", json={"to": target}, headers=headers, timeout=3600
        )
    except httpx2.TransportError as exc:
        print(f"llmledger backup: cannot reach the collector at {args.api}: {exc}", file=sys.stderr)
        return 1
    if response.status_code != 200:
        print(f"llmledger backup: the collector answered {response.status_code}: {_error(response)}", file=sys.stderr)
        return 1
    answer = response.json()
    rows = ", ".join(f"{name} {count:,}" for name, count in answer["rows"].items())
    print(f"backup written to {answer['to']} ({rows})")
    return 0


def restore_main(args: argparse.Namespace) -> int:
    from collector.backup import BackupError, restore

    try:
        counts = restore(args.db, args.source)
    except BackupError as exc:
        print(f"llmledger restore: {exc}", file=sys.stderr)
        return 1
    print(f"restored {args.source} into {args.db} ({', '.join(f'{n} {c:,}' for n, c in counts.items())})")
    return 0


def _error(response: httpx2.Response) -> str:
    try:
        return str(response.json()["error"])
    except (ValueError, KeyError, TypeError):
        return json.dumps(response.text[:200])
