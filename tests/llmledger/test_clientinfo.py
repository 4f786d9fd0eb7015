"""A client's attributes: read afresh by `client_attributes`, kept by `client_constants` for as long as the client
lives and the providers map is the same object."""

from __future__ import annotations

import gc

import openai

from llmledger import semconv as sc
from llmledger.wrapper import clientinfo

PROVIDERS = {"llm-proxy.internal": "openai"}


def test_a_clients_constants_are_read_once_per_client_and_providers_map() -> None:
    with openai.OpenAI(api_key="sk-proj-test", base_url="http://llm-proxy.internal:8080/v1", project="p-1") as client:
        constants = clientinfo.client_constants(client, PROVIDERS)
        assert constants == {
            sc.SERVER_ADDRESS: "llm-proxy.internal",
            sc.SERVER_PORT: 8080,
            sc.OPENAI_PROJECT: "p-1",
            sc.CLIENT_KEY_KIND: "project",
            sc.CLIENT_TIMEOUT_S: 600.0,
            sc.CLIENT_MAX_RETRIES: 2,
            sc.GEN_AI_PROVIDER_NAME: "openai",
        }
        assert clientinfo.client_constants(client, PROVIDERS) is constants
        assert clientinfo.client_attributes(client) == {
            k: v for k, v in constants.items() if k != sc.GEN_AI_PROVIDER_NAME
        }
        # Another providers map (instrument() again) is read again, even an equal one.
        again = clientinfo.client_constants(client, dict(PROVIDERS))
        assert again == constants
        assert again is not constants
        other = client.with_options(timeout=5)  # a client of its own, sharing the HTTP client
        assert clientinfo.client_constants(other, PROVIDERS)[sc.CLIENT_TIMEOUT_S] == 5.0
        key = id(client)
        assert key in clientinfo._constants
    del client, other
    gc.collect()
    assert key not in clientinfo._constants  # the entry goes with the client
