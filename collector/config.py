"""The collector's settings, typed, built once from its command-line arguments and the environment."""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from genai_prices.update_prices import DEFAULT_UPDATE_URL

from collector.api.auth import Tokens
from collector.receive.pool import WORKERS_ENV, default_workers
from collector.store import memory
from llmledger.credentials import TokenError, read_token_file

ADMIN_KEY_ENV = "OPENAI_ADMIN_KEY"


@dataclass(frozen=True)
class CollectorConfig:
    """What `llmledger collector` (and `up`, `demo`, the tests' collectors) runs with; the defaults and the help of
    each setting are its command-line option's (`collector.options`)."""

    db: Path
    lake: str | None
    data_path: str | None
    host: str
    port: int
    grpc_port: int
    max_body_bytes: int
    prices: Path | None
    prices_update_interval: float
    prices_update_timeout: float
    alert_interval: float
    dashboard_url: str
    production_environments: tuple[str, ...]
    retention_days: int | None
    max_pending_rows: int
    ingest_workers: int  # processes decoding OTLP bodies (collector/receive/pool.py); 0: on the receiving threads
    flush_interval: float | None  # None: the store's own default (0 on a file, 0.5 s on a lake)
    compact_interval: float
    openai_base_url: str | None
    reconcile_interval: float | None  # None: the reconciler's default
    memory_limit: str = ""  # DuckDB's memory_limit, resolved (collector/store/memory.py); "": not set
    # Ports another part of the same command will listen on (`up`'s dashboard), checked free at start.
    also_listening: tuple[tuple[str, int], ...] = ()
    # Secrets: never in a repr, a log line or argv.
    openai_admin_key: str | None = field(default=None, repr=False)
    prices_update_url: str | None = field(default=None, repr=False)  # None: the bundled list; may carry a token
    tokens: Tokens = field(default_factory=Tokens, repr=False)

    @classmethod
    def from_args(
        cls, args: argparse.Namespace, environ: Mapping[str, str] | None = None, tokens: Tokens | None = None
    ) -> CollectorConfig:
        """The parsed options of `collector.options`, with the tokens and the OpenAI admin key from the environment
        (or the files it names); a setting that can't be used stops the command with one line."""
        environ = os.environ if environ is None else environ
        try:
            key = admin_key(args.openai_admin_key_file, environ)
        except TokenError as exc:
            raise SystemExit(f"llmledger collector: {exc}") from None
        dashboard_port = getattr(args, "dashboard_port", None)
        update_url = prices_update_url(args.prices_update)
        if args.prices_update_interval <= 0 or args.prices_update_timeout <= 0:
            raise SystemExit("llmledger collector: --prices-update-interval and --prices-update-timeout must be > 0")
        return cls(
            db=Path(args.db),
            lake=args.lake,
            data_path=args.data_path,
            host=args.host,
            port=args.port,
            grpc_port=args.grpc_port,
            max_body_bytes=args.max_body_bytes,
            prices=Path(args.prices) if args.prices else None,
            prices_update_interval=args.prices_update_interval,
            prices_update_timeout=args.prices_update_timeout,
            alert_interval=args.alert_interval,
            dashboard_url=args.dashboard_url,
            production_environments=tuple(
                name.strip() for name in args.production_environments.split(",") if name.strip()
            ),
            retention_days=args.retention_days,
            max_pending_rows=args.max_pending_rows,
            ingest_workers=ingest_workers(args.ingest_workers, environ),
            flush_interval=args.flush_interval,
            compact_interval=args.compact_interval,
            openai_base_url=args.openai_base_url,
            reconcile_interval=args.reconcile_interval,
            memory_limit=_memory_limit(args.memory_limit, environ),
            also_listening=(("--dashboard-port", dashboard_port),) if dashboard_port else (),
            openai_admin_key=key,
            prices_update_url=update_url,
            tokens=Tokens.from_env(environ) if tokens is None else tokens,
        )


def _memory_limit(option: str | None, environ: Mapping[str, str]) -> str:
    """`--memory-limit`, else LLMLEDGER_MEMORY_LIMIT, else half the machine's memory; as DuckDB takes it."""
    try:
        return memory.resolve(option if option is not None else environ.get(memory.ENV))
    except memory.MemoryLimitError as exc:
        raise SystemExit(f"llmledger collector: {exc}") from None


def prices_update_url(value: str | None) -> str | None:
    """`--prices-update`'s URL: None when not given, genai-prices' published file when given bare."""
    if value is None:
        return None
    if not value:
        return DEFAULT_UPDATE_URL
    if urlsplit(value).scheme not in ("http", "https") or not urlsplit(value).hostname:
        raise SystemExit("llmledger collector: --prices-update takes an http(s) URL")
    return value


def ingest_workers(value: int | None, environ: Mapping[str, str]) -> int:
    """`--ingest-workers`, else `LLMLEDGER_INGEST_WORKERS`, else one per core."""
    if value is None:
        text = environ.get(WORKERS_ENV, "").strip()
        if not text:
            return default_workers()
        try:
            value = int(text)
        except ValueError:
            raise SystemExit(f"llmledger collector: {WORKERS_ENV} must be a whole number, not {text!r}") from None
    if value < 0:
        raise SystemExit("llmledger collector: the ingest pool can't have fewer than 0 workers (--ingest-workers)")
    return value


def admin_key(key_file: Path | None, environ: Mapping[str, str]) -> str | None:
    """The OpenAI admin key: from `--openai-admin-key-file` when given, else `OPENAI_ADMIN_KEY`, else None."""
    if key_file is not None:
        return read_token_file(key_file, "OpenAI admin key")
    return environ.get(ADMIN_KEY_ENV, "").strip() or None
