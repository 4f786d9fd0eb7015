"""The operator password, kept only as a salted scrypt hash (`llmledger hash-password` makes one)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

_N, _R, _P = 2**14, 8, 1
PREFIX = "scrypt"


def hash_password(password: str) -> str:
    """`scrypt$N$r$p$salt$hash`, the salt and hash in URL-safe base64."""
    if not password:
        raise ValueError("the password is empty")
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=_N, r=_R, p=_P, dklen=32)
    return "$".join((PREFIX, str(_N), str(_R), str(_P), _b64(salt), _b64(digest)))


def check_hash_format(stored: str) -> None:
    """Raise ValueError unless `stored` is a hash this module made (so a plain password is never accepted)."""
    _parse(stored)


def verify(password: str, stored: str) -> bool:
    n, r, p, salt, expected = _parse(stored)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p, dklen=len(expected))
    return hmac.compare_digest(digest, expected)


def _parse(stored: str) -> tuple[int, int, int, bytes, bytes]:
    parts = stored.strip().split("$")
    if len(parts) != 6 or parts[0] != PREFIX or not all(part.isdigit() for part in parts[1:4]):
        raise ValueError("not an llmledger password hash (make one with `llmledger hash-password`)")
    n, r, p = int(parts[1]), int(parts[2]), int(parts[3])
    try:
        salt, expected = _unb64(parts[4]), _unb64(parts[5])
    except ValueError:
        salt = expected = b""
    if not (salt and expected and n > 1 and n & (n - 1) == 0 and r > 0 and p > 0):
        raise ValueError("the password hash is damaged (make a new one with `llmledger hash-password`)")
    return n, r, p, salt, expected


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode()


def _unb64(text: str) -> bytes:
    return base64.b64decode(text, altchars=b"-_", validate=True)
