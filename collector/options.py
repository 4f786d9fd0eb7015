"""The collector's command-line options (no heavy imports: the `llmledger` CLI reads this at start)."""

from __future__ import annotations

import argparse
from pathlib import Path

DEFAULT_MAX_BODY_BYTES = 16 * 1024 * 1024


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db", default="./llmledger.duckdb", help="DuckDB file (created and migrated if new)")
    parser.add_argument(
        "--lake",
        default=None,
        metavar="'postgres:dbname=… host=… user=…'",
        help="store into a DuckLake whose catalog is this PostgreSQL database instead of --db "
        "(several collectors can share it; see the README's 'Scale out')",
    )
    parser.add_argument(
        "--data-path",
        default=None,
        metavar="DIR_OR_S3_URL",
        help="with --lake: where the lake's Parquet files go, a shared folder or s3://bucket/prefix "
        "(S3 credentials from AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION, AWS_ENDPOINT_URL)",
    )
    parser.add_argument(
        "--flush-interval",
        type=float,
        default=None,
        metavar="SECONDS",
        help="longest a request waits to be coalesced into a larger write (default: 0 on a file, 0.5 on a lake, "
        "which also waits for 10,000 rows)",
    )
    parser.add_argument(
        "--compact-interval",
        type=float,
        default=600.0,
        metavar="SECONDS",
        help="with --lake: seconds between compactions of the lake's files (on the leader; 0 turns it off)",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: loopback only)")
    parser.add_argument("--port", type=int, default=4318, help="OTLP/HTTP and query API port")
    parser.add_argument("--grpc-port", type=int, default=4317, help="OTLP/gRPC port; 0 picks a free one, -1 disables")
    parser.add_argument("--alert-interval", type=float, default=15.0, help="seconds between alert evaluations")
    parser.add_argument(
        "--dashboard-url", default="http://127.0.0.1:8501", help="where alert notifications link to (the dashboard)"
    )
    parser.add_argument("--max-body-bytes", type=int, default=DEFAULT_MAX_BODY_BYTES, help="largest OTLP body")
    parser.add_argument(
        "--prices",
        default=None,
        metavar="FILE",
        help="TOML file of negotiated rates laid over genai-prices list prices (see the README)",
    )
    parser.add_argument(
        "--prices-update",
        nargs="?",
        const="",
        default=None,
        metavar="URL",
        help="keep the list prices current: fetch genai-prices' price file in the background (default URL: "
        "genai-prices' published data.json); off by default, when the list bundled with genai-prices is used",
    )
    parser.add_argument(
        "--prices-update-interval",
        type=float,
        default=3600.0,
        metavar="SECONDS",
        help="with --prices-update: seconds between fetches (default 3600)",
    )
    parser.add_argument(
        "--prices-update-timeout",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="with --prices-update: longest wait for the price file (default 10)",
    )
    parser.add_argument(
        "--production-environments",
        default="production,prod",
        metavar="NAMES",
        help="comma-separated environments the readiness score treats as production",
    )
    parser.add_argument(
        "--retention-days",
        type=int,
        default=None,
        help="delete raw calls older than this many whole UTC days, hourly (daily rollups and alerts are kept)",
    )
    parser.add_argument(
        "--ingest-workers",
        type=int,
        default=None,
        metavar="N",
        help="processes that decode and normalize incoming spans, beside the one that prices and writes them "
        "(default: $LLMLEDGER_INGEST_WORKERS, else one per core; 0: on the receiving threads)",
    )
    parser.add_argument(
        "--memory-limit",
        default=None,
        metavar="SIZE_OR_SHARE",
        help="most memory DuckDB may use: a size (4GB, 512MiB) or a share of the machine's memory (40%%); "
        "default $LLMLEDGER_MEMORY_LIMIT, else half the machine's (or its container's) memory",
    )
    parser.add_argument("--max-pending-rows", type=int, default=100_000, help="rows queued before answering 503")
    parser.add_argument(
        "--openai-admin-key-file",
        type=Path,
        default=None,
        metavar="FILE",
        help="file holding an OpenAI admin key (api.usage.read) for reconciliation; default $OPENAI_ADMIN_KEY",
    )
    parser.add_argument(
        "--openai-base-url",
        default=None,
        metavar="URL",
        help="OpenAI's API base for reconciliation (a proxy, or the demo's local fake); default the SDK's own, "
        "which honours $OPENAI_BASE_URL",
    )
    parser.add_argument(
        "--reconcile-interval",
        type=float,
        default=None,
        metavar="SECONDS",
        help="seconds between pulls of OpenAI's costs and usage (default 6 h when a key is set; 0: on demand only)",
    )


def add_up_arguments(parser: argparse.ArgumentParser, *, demo: bool = False) -> None:
    add_arguments(parser)
    parser.add_argument("--dashboard-port", type=int, default=8501, help="dashboard port")
    if demo:
        parser.set_defaults(db=None)
        parser.description = "collector + dashboard on a demo database (a temporary file unless --db is given)"
