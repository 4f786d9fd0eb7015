"""Attributes that belong to an OpenAI client rather than to one call; what every call of a client shares is read once
per client."""

from __future__ import annotations

import threading
import weakref
from collections.abc import Mapping
from typing import Any

from llmledger import semconv as sc
from llmledger.wrapper.providers import client_provider

_DEFAULT_SDK_TIMEOUT_S = 600.0
_KEY_KINDS = (("sk-proj-", "project"), ("sk-svcacct-", "service_account"), ("sk-admin-", "admin"), ("sk-", "user"))

_lock = threading.Lock()
# client id → (weak reference to the client, the providers map, its attributes and provider's): what every call of a
# client shares, in one dict. By id, since a WeakKeyDictionary lookup makes a weak reference each time.
_constants: dict[int, tuple[weakref.ref[Any], Mapping[str, str], dict[str, Any]]] = {}


def key_kind(api_key: object) -> str:
    """What kind of key a client uses, from its prefix only; the key itself never leaves the process."""
    if isinstance(api_key, str):
        for prefix, kind in _KEY_KINDS:
            if api_key.startswith(prefix):
                return kind
    return "other"


def timeout_seconds(timeout: object) -> float | None:
    """The longest a single read may wait: a float, or an httpx Timeout's read timeout."""
    if isinstance(timeout, (int, float)) and not isinstance(timeout, bool):
        return float(timeout)
    read = getattr(timeout, "read", None)
    if isinstance(read, (int, float)):
        return float(read)
    if timeout is None:
        return None
    return _DEFAULT_SDK_TIMEOUT_S


def client_attributes(client: Any) -> dict[str, Any]:
    """Static attributes of `client` (server, project, key kind, timeout, retries). Calls take them from
    `client_constants`, which keeps them; a realtime connection or a batch file read, rare, reads them afresh."""
    attrs: dict[str, Any] = {}
    base_url = getattr(client, "base_url", None)
    host = getattr(base_url, "host", None)
    if host:
        attrs[sc.SERVER_ADDRESS] = host
        port = getattr(base_url, "port", None) or (443 if getattr(base_url, "scheme", "") == "https" else 80)
        attrs[sc.SERVER_PORT] = int(port)
    project = getattr(client, "project", None)
    if isinstance(project, str) and project:
        attrs[sc.OPENAI_PROJECT] = project
    attrs[sc.CLIENT_KEY_KIND] = key_kind(getattr(client, "api_key", None))
    timeout = timeout_seconds(getattr(client, "timeout", None))
    if timeout is not None:
        attrs[sc.CLIENT_TIMEOUT_S] = timeout
    max_retries = getattr(client, "max_retries", None)
    if isinstance(max_retries, int):
        attrs[sc.CLIENT_MAX_RETRIES] = max_retries
    return attrs


def call_overrides(max_retries: object, timeout: object) -> dict[str, Any]:
    """Per-call `timeout=` / `max_retries=` given through `with_options()` or request kwargs (the SDK's request
    options' two fields, `NotGiven` when not)."""
    attrs: dict[str, Any] = {}
    if isinstance(max_retries, int):
        attrs[sc.CLIENT_MAX_RETRIES] = max_retries
    if timeout is not None and (isinstance(timeout, (int, float)) or hasattr(timeout, "read")):
        seconds = timeout_seconds(timeout)
        if seconds is not None:
            attrs[sc.CLIENT_TIMEOUT_S] = seconds
    return attrs


def client_constants(client: Any, providers: Mapping[str, str]) -> dict[str, Any]:
    """`client_attributes` and who bills the client (`client_provider`) in one dict, made once per client (don't
    change it: every call of the client shares it)."""
    key = id(client)
    cached = _constants.get(key)
    if cached is not None and cached[0]() is client and cached[1] is providers:
        return cached[2]
    attrs = {**client_attributes(client), **client_provider(client, providers)}
    try:  # the entry goes with the client (its id may be reused only after that)
        ref = weakref.ref(client, lambda _ref: _constants.pop(key, None))
    except TypeError:  # not weakly referenceable: worked out per call
        return attrs
    with _lock:
        _constants[key] = (ref, providers, attrs)
    return attrs
