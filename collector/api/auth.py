"""Who may do what: the collector's three bearer tokens (ingest, read, admin) and the rule for each request.

With no token configured the collector is open, which `check_listen_address` allows on loopback only. With
tokens, every endpoint but `/healthz` needs one: a missing or unknown token is 401, a known token of the
wrong kind 403. The admin token may do everything. Tokens are compared in constant time and never logged.
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from llmledger.credentials import KINDS, TokenError, env_names, token_from_env

Scope = Literal["open", "ingest", "read", "admin"]

# POST endpoints that change nothing: a read token may use them.
_READ_ONLY_POSTS = frozenset({"/api/v1/alert-rules/preview", "/api/v1/digests/preview", "/api/v1/sql"})


class AuthError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class Tokens:
    ingest: str | None = None
    read: str | None = None
    admin: str | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Tokens:
        try:
            return cls(**{kind: token_from_env(kind, environ) for kind in KINDS})  # type: ignore[arg-type]
        except TokenError as exc:
            raise SystemExit(f"llmledger collector: {exc}") from None

    @property
    def enabled(self) -> bool:
        return any((self.ingest, self.read, self.admin))

    def missing(self) -> list[str]:
        return [env_names(kind)[0] for kind in KINDS if getattr(self, kind) is None]

    def kind_of(self, presented: str) -> str | None:
        """Which kind `presented` is, comparing against every token in constant time (no early exit)."""
        found = None
        for kind in KINDS:
            expected = getattr(self, kind)
            if expected is not None and hmac.compare_digest(presented.encode(), expected.encode()):
                found = kind
        return found

    def authorize(self, scope: Scope, authorization: str | None) -> None:
        """Raise `AuthError` (401/403) unless the `Authorization` header value grants `scope`."""
        if scope == "open" or not self.enabled:
            return
        scheme, _, presented = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not presented.strip():
            raise AuthError(401, f"this endpoint needs an 'Authorization: Bearer <{scope} token>' header")
        kind = self.kind_of(presented.strip())
        if kind is None:
            raise AuthError(401, "the bearer token is not one this collector knows")
        if kind != "admin" and kind != scope:
            raise AuthError(403, f"a {kind} token can't be used here: this endpoint needs the {scope} token")


def scope_for(method: str, path: str) -> Scope:
    if path == "/healthz":
        return "open"
    if path.startswith("/v1/"):
        return "ingest"
    if method in ("GET", "HEAD") or path in _READ_ONLY_POSTS:
        return "read"
    return "admin"


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_listen_address(host: str, tokens: Tokens) -> None:
    """Refuse to serve beyond this machine without all three tokens."""
    if is_loopback(host) or not tokens.missing():
        return
    raise SystemExit(
        f"llmledger collector: refusing to listen on {host} without tokens; set {', '.join(tokens.missing())} "
        "(or the same names with _FILE, naming a file that holds the token), or listen on 127.0.0.1"
    )
