"""`llmledger export focus --api URL [--from --to] --format csv|parquet -o FILE`: the FOCUS 1.2 cost file."""

from __future__ import annotations

import argparse
from pathlib import Path

from llmledger_cli import collector_client


def add_arguments(parser: argparse.ArgumentParser) -> None:
    kinds = parser.add_subparsers(dest="export_kind", required=True)
    focus = kinds.add_parser("focus", help="FOCUS 1.2 cost and usage rows, reconciled with OpenAI's bill")
    collector_client.add_connection_arguments(focus, "read")
    focus.add_argument("--from", dest="start", help="UTC date, inclusive (default: the current month)")
    focus.add_argument("--to", dest="end", help="UTC date, exclusive")
    focus.add_argument("--format", choices=("csv", "parquet"), default="csv")
    focus.add_argument("-o", "--output", type=Path, required=True, help="file to write")


def main(args: argparse.Namespace) -> int:
    params = {name: value for name, value in (("from", args.start), ("to", args.end)) if value}
    params["format"] = args.format
    try:
        response = collector_client.call(
            args, "GET", "/api/v1/export/focus", kinds=("read", "admin"), timeout=600, params=params
        )
    except collector_client.CallError as error:
        return error.report("export focus")
    args.output.write_bytes(response.content)
    print(f"wrote {args.output} ({len(response.content):,} bytes, FOCUS 1.2 {args.format})")
    return 0
