"""The collector's settings, typed, built once from its command-line arguments and the environment."""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from collector.api.auth import Tokens

ADMIN_KEY_ENV = "OPENAI_ADMIN_KEY"


@dataclass(frozen=True)
class CollectorConfig:
    """What `llmledger collector` (and `up`, `demo`, the tests' collectors) runs with; see `collector.options`."""

    db: Path
    lake: str | None = None
    data_path: str | None = None
    host: str = "127.0.0.1"
    port: int = 4318
    grpc_port: int = 4317
    max_body_bytes: int = 16 * 1024 * 1024
    prices: Path | None = None
    alert_interval: float = 15.0
    dashboard_url: str = "http://127.0.0.1:8501"
    production_environments: tuple[str, ...] = ("production", "prod")
    retention_days: int | None = None
    max_pending_rows: int = 100_000
    flush_interval: float | None = None  # None: the store's own default (0 on a file, 0.5 s on a lake)
    compact_interval: float = 600.0
    openai_base_url: str | None = None
    reconcile_interval: float | None = None  # None: the reconciler's default
    # Ports another part of the same command will listen on (`up`'s dashboard), checked free at start.
    also_listening: tuple[tuple[str, int], ...] = ()
    # Secrets: never in a repr, a log line or argv.
    openai_admin_key: str | None = field(default=None, repr=False)
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
        except AdminKeyError as exc:
            raise SystemExit(f"llmledger collector: {exc}") from None
        dashboard_port = getattr(args, "dashboard_port", None)
        return cls(
            db=Path(args.db) if args.db is not None else Path("llmledger.duckdb"),
            lake=args.lake,
            data_path=args.data_path,
            host=args.host,
            port=args.port,
            grpc_port=args.grpc_port,
            max_body_bytes=args.max_body_bytes,
            prices=Path(args.prices) if args.prices else None,
            alert_interval=args.alert_interval,
            dashboard_url=args.dashboard_url,
            production_environments=tuple(
                name.strip() for name in args.production_environments.split(",") if name.strip()
            ),
            retention_days=args.retention_days,
            max_pending_rows=args.max_pending_rows,
            flush_interval=args.flush_interval,
            compact_interval=args.compact_interval,
            openai_base_url=args.openai_base_url,
            reconcile_interval=args.reconcile_interval,
            also_listening=(("--dashboard-port", dashboard_port),) if dashboard_port else (),
            openai_admin_key=key,
            tokens=Tokens.from_env(environ) if tokens is None else tokens,
        )


class AdminKeyError(Exception):
    """The key file can't be read or is empty: a set-up mistake to report at start."""


def admin_key(key_file: Path | None, environ: Mapping[str, str] | None = None) -> str | None:
    """The OpenAI admin key: from `--openai-admin-key-file` when given, else `OPENAI_ADMIN_KEY`, else None."""
    if key_file is not None:
        try:
            key = Path(key_file).read_text().strip()
        except OSError as exc:
            raise AdminKeyError(f"cannot read the OpenAI admin key file {key_file}: {exc.strerror or exc}") from None
        if not key:
            raise AdminKeyError(f"the OpenAI admin key file {key_file} is empty")
        return key
    return (os.environ if environ is None else environ).get(ADMIN_KEY_ENV, "").strip() or None
