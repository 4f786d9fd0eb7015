"""The guard, runnable on its own: a circuit breaker that fails fast and reroutes, against a local fake OpenAI that
fails on command. With a collector running, an enforced budget (Alerts page, or the API) blocks or downgrades too.

    python examples/guard.py
"""

from __future__ import annotations

import openai

import llmledger
from llmledger.testing.fake_openai import FakeOpenAI, Reply

SERVER_ERROR = Reply(500, '{"error": {"message": "overloaded", "type": "server_error"}}')

with FakeOpenAI() as fake:
    guard = llmledger.GuardSettings(
        failure_threshold=2,  # two failed calls in a row open gpt-4o's circuit ...
        cool_down_s=30,  # ... for 30 s, then one probe goes through
        fallbacks={"gpt-4o": "gpt-4o-mini"},  # while it is open, send gpt-4o's calls to gpt-4o-mini
        budgets=False,  # no collector in this example: budgets come from one (see README, Guard)
    )
    client = openai.OpenAI(base_url=fake.base_url, api_key="sk-example", max_retries=0)
    with llmledger.instrument(client, providers={"127.0.0.1": "openai"}, guard=guard):
        fake.enqueue(SERVER_ERROR, SERVER_ERROR)
        for attempt in range(2):
            try:
                client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
            except openai.InternalServerError:
                print(f"call {attempt + 1}: OpenAI failed")
        answer = client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
        print(f"call 3: circuit open, rerouted: answered by {answer.model}")
        print(f"the fake was asked for {fake.requests[-1].body['model']}")
