"""Bearer tokens for the collector, from an environment variable or a file — never from argv or logs.

`LLMLEDGER_{KIND}_TOKEN` holds a token; `LLMLEDGER_{KIND}_TOKEN_FILE` names a file holding one (the way
container secrets arrive). Kinds: ingest (`/v1/*`), read (`GET /api/v1/*`), admin (every change, and reads).
"""

from __future__ import annotations

import os
from pathlib import Path

KINDS = ("ingest", "read", "admin")


class TokenError(ValueError):
    """A token file that can't be read or is empty: a set-up mistake to report, not to ignore."""


def env_names(kind: str) -> tuple[str, str]:
    variable = f"LLMLEDGER_{kind.upper()}_TOKEN"
    return variable, f"{variable}_FILE"


def read_token_file(path: Path, what: str = "token") -> str:
    """A secret kept in a file (a token, or the collector's OpenAI admin key): stripped, never empty."""
    try:
        token = Path(path).read_text().strip()
    except OSError as exc:
        raise TokenError(f"cannot read the {what} file {path}: {exc.strerror or exc}") from None
    if not token:
        raise TokenError(f"the {what} file {path} is empty")
    return token


def token_from_env(kind: str, environ: os._Environ[str] | dict[str, str] | None = None) -> str | None:
    """The token of one kind from its variable, else from the file its `_FILE` variable names, else None."""
    env = os.environ if environ is None else environ
    variable, file_variable = env_names(kind)
    if token := env.get(variable, "").strip():
        return token
    if path := env.get(file_variable, "").strip():
        return read_token_file(Path(path))
    return None


def client_token(*kinds: str, token_file: Path | None = None) -> str | None:
    """What a client sends: `--token-file` when given, else the first kind (in order) that is set."""
    if token_file is not None:
        return read_token_file(token_file)
    for kind in kinds:
        if token := token_from_env(kind):
            return token
    return None
