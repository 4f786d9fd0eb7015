"""Who bills a client's calls: OpenAI, Azure OpenAI, an OpenAI-compatible provider recognised from the URL, or a
server of the app's own (docs/architecture.md, Providers).

Decided once per client, from what the app configured (`AzureOpenAI`, `base_url`), never from the traffic:
  1. `AzureOpenAI` / `AsyncAzureOpenAI`: `azure.ai.openai`, with the deployment (also for an Azure OpenAI host).
  2. `LLMLEDGER_PROVIDERS` / `instrument(providers=...)`: the app says who bills a host (a proxy in front of OpenAI).
  3. A URL genai-prices knows (40+ providers' API URLs: OpenRouter, Groq, Together, Fireworks, DeepSeek, ...).
  4. A loopback, private or link-local address (vLLM, Ollama, a LiteLLM proxy): `self_hosted`, no list price.
  5. Anything else: `openai_compatible`, priced at OpenAI's list price and flagged as such.
"""

from __future__ import annotations

import ipaddress
import re
import threading
import weakref
from collections.abc import Mapping
from typing import Any

from genai_prices import data_snapshot
from openai.lib.azure import BaseAzureClient

from llmledger import semconv as sc

_OPENAI_HOSTS = frozenset({"api.openai.com"})
_AZURE_DEPLOYMENT = re.compile(r"/deployments/([^/]+)")
# genai-prices' provider id → gen_ai.provider.name, where the convention names it otherwise.
_CONVENTION_NAMES = {"azure": sc.PROVIDER_AZURE, "x-ai": "x_ai", "mistral": "mistral_ai", "aws": "aws.bedrock"}
_LOCAL_SUFFIXES = (".local", ".internal", ".localhost")


_cache: weakref.WeakKeyDictionary[Any, tuple[Mapping[str, str], dict[str, Any]]] = weakref.WeakKeyDictionary()
_lock = threading.Lock()


def client_provider(client: Any, providers: Mapping[str, str]) -> dict[str, Any]:
    """`gen_ai.provider.name` (and Azure's deployment) for a client, cached per client and providers map."""
    cached = _cache.get(client)
    if cached is not None and cached[0] is providers:
        return cached[1]
    attrs = _provider_of(client, providers)
    with _lock:
        _cache[client] = (providers, attrs)
    return attrs


def _provider_of(client: Any, providers: Mapping[str, str]) -> dict[str, Any]:
    base_url = getattr(client, "base_url", None)
    host = (getattr(base_url, "host", None) or "").lower()
    port = getattr(base_url, "port", None)
    named = providers.get(f"{host}:{port}") or providers.get(host)
    if isinstance(client, BaseAzureClient) or (named is None and _is_azure(str(base_url))):
        attrs: dict[str, Any] = {sc.GEN_AI_PROVIDER_NAME: sc.PROVIDER_AZURE}
        deployment = getattr(client, "_azure_deployment", None) or _deployment_in(str(base_url))
        if isinstance(deployment, str):
            attrs[sc.DEPLOYMENT] = deployment
        return attrs
    if named is not None:
        return {sc.GEN_AI_PROVIDER_NAME: named}
    if not host or host in _OPENAI_HOSTS:
        return {sc.GEN_AI_PROVIDER_NAME: sc.PROVIDER_OPENAI}
    known = _known_provider(str(base_url))
    if known is not None:
        return {sc.GEN_AI_PROVIDER_NAME: known}
    if _is_private(host):
        return {sc.GEN_AI_PROVIDER_NAME: sc.PROVIDER_SELF_HOSTED}
    return {sc.GEN_AI_PROVIDER_NAME: sc.PROVIDER_OPENAI_COMPATIBLE}


def azure_deployment(url: str, body: Mapping[str, Any]) -> str | None:
    """An Azure call's deployment: in the base URL, or the `model` the SDK moves into the path."""
    return _deployment_in(url) or (body.get("model") if isinstance(body.get("model"), str) else None)


def _deployment_in(url: str) -> str | None:
    match = _AZURE_DEPLOYMENT.search(url)
    return match.group(1) if match else None


def _is_azure(url: str) -> bool:
    provider = _match_genai_prices(url)
    return provider is not None and provider == "azure"


def _known_provider(url: str) -> str | None:
    provider = _match_genai_prices(url)
    if provider is None or provider == "openai":
        return None if provider is None else sc.PROVIDER_OPENAI
    return _CONVENTION_NAMES.get(provider, provider)


def _match_genai_prices(url: str) -> str | None:
    try:
        return data_snapshot.get_snapshot().find_provider(None, None, url.rstrip("/")).id
    except LookupError:
        return None


def _is_private(host: str) -> bool:
    if host == "localhost" or host.endswith(_LOCAL_SUFFIXES):
        return True
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return "." not in host  # a bare name (a container or docker-compose service) is on the app's own network
    return address.is_private or address.is_loopback or address.is_link_local
