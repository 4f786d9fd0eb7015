"""Real recorded OpenAI exchanges (tests/fixtures/openai-recordings), replayed by the fake server."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from llmledger.testing.fake_openai import Reply

RECORDINGS = Path(__file__).resolve().parent / "fixtures" / "openai-recordings"
OTEL_RECORDINGS = RECORDINGS / "opentelemetry-instrumentation-openai-v2"
# Replaying bodies decompressed and re-serialised makes these recorded headers wrong (see the README).
_DROPPED_HEADERS = {"content-length", "transfer-encoding", "content-encoding", "connection"}


def interactions(name: str) -> list[dict[str, Any]]:
    return yaml.safe_load((OTEL_RECORDINGS / name).read_text())["interactions"]


def reply(name: str, index: int = 0) -> Reply:
    """The recorded response of one interaction, as the fake server's reply."""
    response = interactions(name)[index]["response"]
    headers = {}
    for key, value in response["headers"].items():
        if key.lower() in _DROPPED_HEADERS:
            continue
        headers[key.lower()] = ", ".join(value) if isinstance(value, list) else value
    body = response["body"]["string"]
    if headers.get("content-type", "").startswith("text/event-stream"):
        blocks = [block + "\n\n" for block in body.split("\n\n") if block.strip()]
        return Reply(response["status"]["code"], b"", headers, events=blocks)
    return Reply(response["status"]["code"], body, headers)


def request_body(name: str, index: int = 0) -> dict[str, Any]:
    """The recorded request body, to send the same call again."""
    return json.loads(interactions(name)[index]["request"]["body"])


def response_body(name: str, index: int = 0) -> dict[str, Any]:
    return json.loads(interactions(name)[index]["response"]["body"]["string"])
