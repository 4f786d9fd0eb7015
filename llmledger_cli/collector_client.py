"""The CLI commands' one way to call a running collector: the token, the request, and a clear error."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import httpx2

from llmledger.credentials import TokenError, client_token

DEFAULT_API = "http://127.0.0.1:4318"


class CallError(Exception):
    """The call could not be made (exit 2: no token, no collector) or the collector refused it (exit 1)."""

    def __init__(self, message: str, exit_code: int, response: httpx2.Response | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code
        self.response = response

    def report(self, command: str) -> int:
        print(f"llmledger {command}: {self.message}", file=sys.stderr)
        return self.exit_code


def add_connection_arguments(parser: argparse.ArgumentParser, kind: str) -> None:
    parser.add_argument("--api", default=DEFAULT_API, help="the collector's base URL")
    variable = f"$LLMLEDGER_{kind.upper()}_TOKEN"
    parser.add_argument("--token-file", type=Path, help=f"file holding the {kind} token (default {variable})")


def call(
    args: argparse.Namespace,
    method: str,
    path: str,
    *,
    kinds: tuple[str, ...],
    timeout: float,
    params: dict[str, Any] | None = None,
    body: Any = None,
) -> httpx2.Response:
    """`method path` on the collector at `args.api` with the first token of `kinds` (or `args.token_file`);
    a 2xx answer, else `CallError`."""
    try:
        token = client_token(*kinds, token_file=args.token_file)
    except TokenError as exc:
        raise CallError(str(exc), 2) from None
    api = args.api.rstrip("/")
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        response = httpx2.request(method, f"{api}{path}", params=params, json=body, headers=headers, timeout=timeout)
    except httpx2.TransportError as exc:
        raise CallError(f"cannot reach the collector at {api}: {exc}", 2) from None
    if not 200 <= response.status_code < 300:
        raise CallError(f"the collector answered {response.status_code}: {error_text(response)}", 1, response)
    return response


def error_text(response: httpx2.Response) -> str:
    """The collector's own words for a refusal, with the parameter or field it named."""
    try:
        answer = response.json()
        named = answer.get("parameter") or answer.get("field")
        return f"{answer['error']}" + (f" ({named})" if named else "")
    except (ValueError, KeyError, TypeError, AttributeError):
        return json.dumps(response.text[:200])
