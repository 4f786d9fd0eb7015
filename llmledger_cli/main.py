"""The `llmledger` command: collector, dashboard, up, demo, load, backup, restore, hash-password."""

from __future__ import annotations

import argparse
import sys
from importlib import import_module

from collector.options import add_arguments as add_collector_arguments
from collector.options import add_up_arguments
from llmledger import __version__
from llmledger_cli import load
from llmledger_cli.backup import add_backup_arguments, add_restore_arguments
from llmledger_cli.check import add_arguments as add_check_arguments
from llmledger_cli.export import add_arguments as add_export_arguments
from llmledger_cli.reconcile import add_arguments as add_reconcile_arguments
from llmledger_cli.reprice import add_arguments as add_reprice_arguments

# command → "module:function(args) -> exit code", imported only when that command runs.
_HANDLERS = {
    "collector": "collector.server:main",
    "dashboard": "dashboard.launch:main",
    "up": "llmledger_cli.up:up",
    "demo": "llmledger_cli.up:demo",
    "load": "llmledger_cli.load:main",
    "hash-password": "dashboard.launch:hash_password_main",
    "backup": "llmledger_cli.backup:backup_main",
    "restore": "llmledger_cli.backup:restore_main",
    "reprice": "llmledger_cli.reprice:main",
    "reconcile": "llmledger_cli.reconcile:main",
    "check": "llmledger_cli.check:main",
    "export": "llmledger_cli.export:main",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="llmledger", description=__doc__)
    parser.add_argument("--version", action="version", version=f"llmledger {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    add_collector_arguments(commands.add_parser("collector", help="OTLP receiver, DuckDB store, alerts and query API"))
    dashboard = commands.add_parser("dashboard", help="the Streamlit dashboard, reading from a collector")
    dashboard.add_argument("--api", default="http://127.0.0.1:4318", help="the collector's base URL")
    dashboard.add_argument("--host", default="127.0.0.1", help="address to listen on (default: loopback only)")
    dashboard.add_argument("--port", type=int, default=8501)
    add_up_arguments(commands.add_parser("up", help="collector and dashboard together; Ctrl-C stops both"))
    add_up_arguments(
        commands.add_parser("demo", help="`up` on a demo database with sample data and a live simulated app"),
        demo=True,
    )
    load.add_arguments(commands.add_parser("load", help="replay an OTLP sample file into a collector"))
    add_backup_arguments(commands.add_parser("backup", help="have the running collector write a Parquet backup"))
    add_restore_arguments(
        commands.add_parser("restore", help="restore a backup into a new database file (collector stopped)")
    )
    add_reprice_arguments(commands.add_parser("reprice", help="price a time range again with the current price book"))
    add_reconcile_arguments(commands.add_parser("reconcile", help="pull OpenAI's costs and usage; compare with ours"))
    add_check_arguments(commands.add_parser("check", help="a service's readiness score; exit 1 below --min-score"))
    add_export_arguments(commands.add_parser("export", help="cost files for finance tools (FOCUS 1.2)"))
    commands.add_parser(
        "hash-password", help="hash a dashboard operator password for LLMLEDGER_DASHBOARD_PASSWORD_HASH"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    module_name, function_name = _HANDLERS[args.command].split(":")
    try:
        handler = getattr(import_module(module_name), function_name)
    except ImportError as exc:
        parser.error(f"`{args.command}` needs the server extra (pip install 'llmledger[server]'): {exc}")
    return handler(args)


if __name__ == "__main__":
    sys.exit(main())
