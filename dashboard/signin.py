"""Sign-in for a dashboard reachable beyond this machine: Streamlit's `st.login` (OIDC) when `[auth]` is
configured in its secrets, else an operator password checked against a stored hash."""

from __future__ import annotations

import os
import time
import tomllib
from collections.abc import Mapping
from pathlib import Path

import streamlit as st

from collector.api.auth import is_loopback
from dashboard import password

HASH_VARIABLE = "LLMLEDGER_DASHBOARD_PASSWORD_HASH"
_SIGNED_IN = "llmledger_signed_in"
FAILED_SIGN_IN_DELAY_S = 1.0  # slows guessing; scrypt itself costs ~50 ms


class SignInError(SystemExit):
    """The dashboard would be reachable by anyone: refuse to serve."""


def password_hash(environ: Mapping[str, str] | None = None) -> str | None:
    """The operator password's hash from LLMLEDGER_DASHBOARD_PASSWORD_HASH or the file its _FILE names."""
    env = os.environ if environ is None else environ
    stored = env.get(HASH_VARIABLE, "").strip()
    if not stored and (path := env.get(f"{HASH_VARIABLE}_FILE", "").strip()):
        stored = Path(path).read_text().strip()
    if not stored:
        return None
    try:
        password.check_hash_format(stored)
    except ValueError as exc:
        raise SignInError(f"llmledger dashboard: {HASH_VARIABLE}: {exc}") from None
    return stored


def oidc_configured(secrets_files: list[Path]) -> bool:
    """Whether Streamlit's secrets hold an `[auth]` section, which `st.login` needs."""
    for path in secrets_files:
        if path.is_file():
            with path.open("rb") as file:
                if "auth" in tomllib.load(file):
                    return True
    return False


def default_secrets_files() -> list[Path]:
    """Where Streamlit looks for secrets by default: the working directory's .streamlit, then the home one."""
    return [Path.cwd() / ".streamlit" / "secrets.toml", Path.home() / ".streamlit" / "secrets.toml"]


def mode(host: str, *, oidc: bool, password_hash: str | None) -> str:
    """`oidc`, `password` or `none` (loopback only); refuses a non-loopback address with neither."""
    if oidc:
        return "oidc"
    if password_hash:
        return "password"
    if is_loopback(host):
        return "none"
    raise SignInError(
        f"llmledger dashboard: refusing to listen on {host} without sign-in; configure st.login (an [auth] section "
        f"in .streamlit/secrets.toml) or set {HASH_VARIABLE} (or {HASH_VARIABLE}_FILE) to the output of "
        "`llmledger hash-password`, or listen on 127.0.0.1"
    )


def gate() -> None:
    """Stop the script here until the visitor has signed in (when sign-in is needed)."""
    host = st.get_option("server.address") or "0.0.0.0"  # unset means every interface
    try:
        stored = password_hash()
        required = mode(host, oidc=_secrets_have_auth(), password_hash=stored)
    except SignInError as refusal:
        st.error(str(refusal))
        st.stop()
    if required == "oidc":
        _oidc()
    elif required == "password":
        _password(stored or "")


def _secrets_have_auth() -> bool:
    try:
        return "auth" in st.secrets
    except (FileNotFoundError, st.errors.StreamlitSecretNotFoundError):
        return False


def _oidc() -> None:
    if not st.user.is_logged_in:
        st.title("llmledger")
        st.button("Sign in", on_click=st.login, type="primary")
        st.stop()
    st.sidebar.button("Sign out", on_click=st.logout)


def _password(stored: str) -> None:
    if st.session_state.get(_SIGNED_IN):
        if st.sidebar.button("Sign out"):
            del st.session_state[_SIGNED_IN]
            st.rerun()
        return
    st.title("llmledger")
    with st.form("sign-in"):
        given = st.text_input("Operator password", type="password")
        if st.form_submit_button("Sign in", type="primary"):
            if password.verify(given, stored):
                st.session_state[_SIGNED_IN] = True
                st.rerun()
            time.sleep(FAILED_SIGN_IN_DELAY_S)
            st.error("Wrong password.")
    st.stop()
