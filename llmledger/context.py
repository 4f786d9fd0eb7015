"""`attributes()`: per-request labels (user, team, feature, tags) that land on every span inside it.

Values live in a `ContextVar`, so each thread and each asyncio task sees its own; a task
created inside the block inherits them (asyncio copies the context), a plain thread does not.
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import hmac
import logging
import secrets
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import MappingProxyType

from llmledger import config, semconv

log = logging.getLogger("llmledger")

_EMPTY: Mapping[str, str] = MappingProxyType({})
_current: contextvars.ContextVar[Mapping[str, str]] = contextvars.ContextVar("llmledger_attributes", default=_EMPTY)

_salt_lock = threading.Lock()
_salt: bytes | None = None
_spool_dir: Path | None = None


def current_attributes() -> Mapping[str, str]:
    """Span attributes from the enclosing `attributes()` blocks (innermost wins)."""
    return _current.get()


@contextlib.contextmanager
def attributes(
    *,
    user: str | None = None,
    team: str | None = None,
    feature: str | None = None,
    tags: Mapping[str, str] | None = None,
) -> Iterator[None]:
    """Label every OpenAI call inside the block; `user` is stored only as a salted hash."""
    merged = dict(_current.get())
    if user is not None:
        merged[semconv.END_USER] = hash_user(user)
    if team is not None:
        merged[semconv.TEAM] = str(team)
    if feature is not None:
        merged[semconv.FEATURE] = str(feature)
    for key, value in (tags or {}).items():
        merged[semconv.TAG_PREFIX + str(key)] = str(value)
    token = _current.set(MappingProxyType(merged))
    try:
        yield
    finally:
        _current.reset(token)


def hash_user(user: str) -> str:
    """A stable, salted, one-way id for an end user (HMAC-SHA256, 32 hex characters)."""
    return hmac.new(_user_salt(), str(user).encode(), hashlib.sha256).hexdigest()[:32]


def _user_salt() -> bytes:
    global _salt
    if _salt is None:
        with _salt_lock:
            if _salt is None:
                configured = config.resolve("user_salt")
                spool_dir = _spool_dir or config.resolve("spool_dir")
                _salt = configured.encode() if configured else _generated_salt(spool_dir)
    return _salt


def _generated_salt(spool_dir: Path) -> bytes:
    path = Path(spool_dir) / "user_salt"
    log.warning(
        "LLMLEDGER_USER_SALT is not set: end users are hashed with a salt kept in %s; "
        "other machines will hash the same user differently",
        path,
    )
    try:
        return path.read_bytes().strip()
    except FileNotFoundError:
        pass
    salt = secrets.token_hex(32).encode()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # 'x' so that two processes starting together keep the first salt written
        with path.open("xb") as handle:
            handle.write(salt)
    except FileExistsError:
        return path.read_bytes().strip()
    except OSError as exc:
        log.warning("could not keep the end-user salt in %s (%s); it lasts only this process", path, exc)
    return salt


def use_spool_dir(spool_dir: Path | None) -> None:
    """Keep the generated salt in `spool_dir` from now on (`configure(spool_dir=...)`)."""
    global _salt, _spool_dir
    with _salt_lock:
        _salt = None
        _spool_dir = Path(spool_dir) if spool_dir is not None else None
