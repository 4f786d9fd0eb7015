"""The `llmledger` command."""

from __future__ import annotations

import argparse
import sys

from collector.options import add_arguments as add_collector_arguments
from llmledger import __version__


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="llmledger", description=__doc__)
    parser.add_argument("--version", action="version", version=f"llmledger {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="make a few instrumented calls to a local fake OpenAI and show the spans")
    demo.add_argument("--calls", type=int, default=8, help="how many rounds of calls to make")
    collector = commands.add_parser("collector", help="run the collector (OTLP receiver, DuckDB store, query API)")
    add_collector_arguments(collector)
    args = parser.parse_args(argv)

    if args.command == "collector":
        try:
            from collector.server import main as collector_main
        except ImportError as exc:
            parser.error(f"the collector needs the server extra (pip install 'llmledger[server]'): {exc}")

        return collector_main(args)

    if args.command == "demo":
        from llmledger.demo import run_demo

        return run_demo(rounds=args.calls)
    parser.error(f"unknown command {args.command}")
    return 2


if __name__ == "__main__":
    sys.exit(main())
