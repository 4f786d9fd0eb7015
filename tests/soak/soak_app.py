"""The soak's app: the real wrapper, configure() exporting to the collector, calls at a steady rate to a local
fake OpenAI server (plain, streamed and embeddings), until SIGTERM; prints how many calls it made."""

from __future__ import annotations

import signal
import sys
import threading
import time

import openai

import llmledger
from llmledger.testing.fake_openai import FakeOpenAI


def main(endpoint: str, calls_per_second: float) -> None:
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    llmledger.configure(endpoint=endpoint, service_name="soak-app", environment="soak")
    llmledger.instrument(providers={"127.0.0.1": "openai"})  # the loopback fake stands in for OpenAI
    made = 0
    # The fake keeps only its last 100 requests: the app's memory is what the soak measures.
    with FakeOpenAI(keep_requests=100) as fake, openai.OpenAI(base_url=fake.base_url, api_key="sk-proj-soak") as client:
        interval = 1.0 / calls_per_second
        next_call = time.monotonic()
        while not stop.is_set():
            kind = made % 10
            messages = [{"role": "user", "content": f"question {made}"}]
            if kind < 6:
                client.chat.completions.create(model="gpt-4o-mini", messages=messages, max_tokens=50)
            elif kind < 9:
                for _ in client.chat.completions.create(model="gpt-4o-mini", messages=messages, stream=True):
                    pass
            else:
                client.embeddings.create(model="text-embedding-3-small", input=f"text {made}")
            made += 1
            next_call += interval
            stop.wait(max(0.0, next_call - time.monotonic()))
    llmledger.flush()
    print(made, flush=True)


if __name__ == "__main__":
    main(sys.argv[1], float(sys.argv[2]))
