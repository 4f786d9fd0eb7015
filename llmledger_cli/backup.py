"""`llmledger backup` (asks the running collector to write a backup) and `llmledger restore` (collector stopped)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from llmledger_cli import collector_client


def add_backup_arguments(parser: argparse.ArgumentParser) -> None:
    collector_client.add_connection_arguments(parser, "admin")
    parser.add_argument("--to", required=True, type=Path, help="a new or empty folder on the collector's machine")


def add_restore_arguments(parser: argparse.ArgumentParser) -> None:
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--db", type=Path, help="the database file to create (must not exist)")
    target.add_argument(
        "--lake", metavar="'postgres:…'", help="a lake to load instead (its catalog; it must hold no calls yet)"
    )
    parser.add_argument("--data-path", help="with --lake: the lake's folder or s3:// URL")
    parser.add_argument("--from", dest="source", required=True, type=Path, help="a folder written by `backup`")


def backup_main(args: argparse.Namespace) -> int:
    target = str(args.to.expanduser().absolute())
    try:
        response = collector_client.call(
            args, "POST", "/api/v1/backup", kinds=("admin",), timeout=3600, body={"to": target}
        )
    except collector_client.CallError as error:
        return error.report("backup")
    answer = response.json()
    rows = ", ".join(f"{name} {count:,}" for name, count in answer["rows"].items())
    print(f"backup written to {answer['to']} ({rows})")
    return 0


def restore_main(args: argparse.Namespace) -> int:
    from collector.store.backup import BackupError, restore, restore_into_lake
    from collector.store.file import StoreOpenError

    if args.lake is not None and args.data_path is None:
        print("llmledger restore: --lake needs --data-path (the lake's folder or s3:// URL)", file=sys.stderr)
        return 2
    try:
        if args.lake is not None:
            counts = restore_into_lake(args.lake, args.data_path, args.source)
        else:
            counts = restore(args.db, args.source)
    except (BackupError, StoreOpenError) as exc:
        print(f"llmledger restore: {exc}", file=sys.stderr)
        return 1
    target = "the lake" if args.lake is not None else args.db
    print(f"restored {args.source} into {target} ({', '.join(f'{n} {c:,}' for n, c in counts.items())})")
    return 0
