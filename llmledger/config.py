"""Every llmledger setting in one table: name, environment variables, default, doc.

Settings are read from the environment once (`settings()`); keyword arguments given to
`configure()` or a CLI flag win over the environment, which wins over the default.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llmledger.credentials import read_token_file


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "llmledger"


def _bool(text: str) -> bool:
    value = text.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError(f"expected a boolean (true/false), got {text!r}")


def _providers(text: str) -> dict[str, str]:
    providers: dict[str, str] = {}
    for entry in filter(None, (part.strip() for part in text.split(","))):
        host, separator, provider = entry.partition("=")
        if not separator or not host.strip() or not provider.strip():
            raise ValueError(f"expected 'host[:port]=provider', got {entry!r}")
        providers[host.strip().lower()] = provider.strip()
    return providers


@dataclass(frozen=True)
class Setting:
    name: str
    env: tuple[str, ...]
    default: Callable[[], Any]
    parse: Callable[[str], Any]
    doc: str


SETTINGS: tuple[Setting, ...] = (
    Setting(
        "endpoint",
        ("LLMLEDGER_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT"),
        lambda: "http://127.0.0.1:4318",
        str,
        "Base URL of the collector's OTLP/HTTP receiver; spans go to {endpoint}/v1/traces.",
    ),
    Setting(
        "traces_endpoint",
        ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",),
        lambda: None,
        str,
        "Full URL for traces; overrides endpoint when set (standard OTLP variable).",
    ),
    Setting(
        "service_name",
        ("OTEL_SERVICE_NAME", "LLMLEDGER_SERVICE_NAME"),
        lambda: None,
        str,
        "The app's name (resource service.name); the OpenTelemetry SDK default when unset.",
    ),
    Setting(
        "environment",
        ("LLMLEDGER_ENVIRONMENT",),
        lambda: None,
        str,
        "deployment.environment.name, e.g. production; left unset rather than guessed.",
    ),
    Setting(
        "service_version",
        ("LLMLEDGER_SERVICE_VERSION",),
        lambda: None,
        str,
        "service.version of the app.",
    ),
    Setting(
        "ingest_token",
        ("LLMLEDGER_INGEST_TOKEN",),
        lambda: None,
        str,
        "Bearer token for the collector's /v1/* (or LLMLEDGER_INGEST_TOKEN_FILE naming a file).",
    ),
    Setting(
        "otlp_headers",
        ("OTEL_EXPORTER_OTLP_HEADERS", "OTEL_EXPORTER_OTLP_TRACES_HEADERS"),
        lambda: None,
        str,
        "Extra exporter headers, 'k1=v1,k2=v2' (standard OTLP variable).",
    ),
    Setting(
        "spool_dir",
        ("LLMLEDGER_SPOOL_DIR",),
        lambda: _cache_dir() / "spool",
        Path,
        "Folder for spans waiting for the collector, and the generated end-user salt.",
    ),
    Setting(
        "spool_max_bytes",
        ("LLMLEDGER_SPOOL_MAX_BYTES",),
        lambda: 256 * 1024 * 1024,
        int,
        "Size cap of the spool (per collector URL); beyond it the oldest spans are dropped and counted (0: no spool).",
    ),
    Setting(
        "spool_retry_max_s",
        ("LLMLEDGER_SPOOL_RETRY_MAX_S",),
        lambda: 30.0,
        float,
        "Longest wait between attempts to send the spool to a collector that is down (exponential backoff).",
    ),
    Setting(
        "user_salt",
        ("LLMLEDGER_USER_SALT",),
        lambda: None,
        str,
        "Salt for hashing end users; set the same value in every process of an app.",
    ),
    Setting(
        "capture_content",
        ("LLMLEDGER_CAPTURE_CONTENT",),
        lambda: False,
        _bool,
        "Record prompt and completion text on spans (off by default).",
    ),
    Setting(
        "signals",
        ("LLMLEDGER_SIGNALS",),
        lambda: True,
        _bool,
        "Record safety and quality signals about content (counts and flags; the text never leaves the process).",
    ),
    Setting(
        "stream_usage",
        ("LLMLEDGER_STREAM_USAGE",),
        lambda: True,
        _bool,
        "Ask chat streams for their usage chunk (hidden from the app) so streamed tokens are exact.",
    ),
    Setting(
        "providers",
        ("LLMLEDGER_PROVIDERS",),
        dict,
        _providers,
        "Who bills calls to a server the URL doesn't tell: 'host[:port]=provider,...', e.g. "
        "'10.0.0.5:4000=openai' for a proxy in front of OpenAI (loopback and private hosts are self_hosted otherwise).",
    ),
    Setting(
        "guard",
        ("LLMLEDGER_GUARD",),
        lambda: None,
        str,
        "Turn the guard on: 'true', optionally with 'fail_closed' and 'pace' (comma-separated); see README, Guard.",
    ),
    Setting(
        "export_queue_size",
        ("LLMLEDGER_EXPORT_QUEUE_SIZE",),
        lambda: 20_000,
        int,
        "Spans held in memory for export; beyond it spans are dropped and counted, never blocking the app.",
    ),
    Setting(
        "export_batch_size",
        ("LLMLEDGER_EXPORT_BATCH_SIZE",),
        lambda: 2_048,
        int,
        "Spans per OTLP export request.",
    ),
    Setting(
        "export_delay_ms",
        ("LLMLEDGER_EXPORT_DELAY_MS",),
        lambda: 1_000,
        int,
        "Longest wait before a partial batch is exported.",
    ),
)

_BY_NAME = {setting.name: setting for setting in SETTINGS}


def _read_env(setting: Setting) -> Any:
    # The variable wins over the file its _FILE names: the order llmledger.credentials (the CLIs, the
    # dashboard) reads tokens in, so every client of a process picks the same one.
    for var in setting.env:
        raw = os.environ.get(var)
        if raw is not None and raw != "":
            return setting.parse(raw)
        file_var = f"{var}_FILE"
        if var.startswith("LLMLEDGER_") and os.environ.get(file_var):
            return setting.parse(read_token_file(Path(os.environ[file_var])))
    return setting.default()


@functools.cache
def settings() -> dict[str, Any]:
    """All settings from the environment, read once per process."""
    values: dict[str, Any] = {}
    for setting in SETTINGS:
        try:
            values[setting.name] = _read_env(setting)
        except (ValueError, OSError) as exc:
            raise ValueError(f"bad value for {'/'.join(setting.env)}: {exc}") from exc
    return values


def resolve(name: str, explicit: Any = None) -> Any:
    """An explicit value if given, else the environment's, else the default."""
    if name not in _BY_NAME:
        raise KeyError(f"unknown setting {name!r}")
    return explicit if explicit is not None else settings()[name]
