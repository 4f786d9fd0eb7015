"""Loopback HTTP receivers shaped like the services the alert channels post to, each checking what it is sent
against that service's documented shape (a body that breaks it gets a 400, as the service would answer)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Request:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


# What a receiver makes of a request: the status to answer, and the problems found in the body (none: accepted).
Check = Callable[[Request], list[str]]


class Receiver:
    """Checks each POST: a request with problems is refused (`refuse_status`); one without is answered with the next
    of `statuses` (a failure to retry after), then `ok_status`, and kept if that is a 2xx."""

    def __init__(
        self, check: Check, *, ok_status: int = 200, statuses: list[int] | None = None, refuse_status: int = 400
    ) -> None:
        self.accepted: list[Request] = []
        self.problems: list[str] = []
        self.statuses = list(statuses or [])
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                pass

            def do_POST(self) -> None:
                request = Request(self.path, {k.lower(): v for k, v in self.headers.items()},
                                  self.rfile.read(int(self.headers["content-length"])))  # fmt: skip
                problems = check(request)
                receiver.problems += problems
                if problems:
                    status = refuse_status
                else:
                    status = receiver.statuses.pop(0) if receiver.statuses else ok_status
                    if 200 <= status < 300:
                        receiver.accepted.append(request)
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"

    def wait_for(self, count: int, timeout: float = 10) -> list[Request]:
        deadline = time.monotonic() + timeout
        while len(self.accepted) < count and time.monotonic() < deadline:
            time.sleep(0.02)
        return self.accepted

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


PAGERDUTY_SEVERITIES = {"critical", "error", "warning", "info"}


def pagerduty_check(routing_key: str) -> Check:
    """PagerDuty's Events API v2 (POST /v2/enqueue): routing_key, event_action trigger|acknowledge|resolve,
    dedup_key of at most 255 characters; a trigger's payload needs summary (at most 1,024 characters), source and
    severity (critical, error, warning, info)."""

    def check(request: Request) -> list[str]:
        problems = []
        event = request.json()
        if request.path != "/v2/enqueue" or request.headers.get("content-type") != "application/json":
            problems.append(f"path {request.path} or content type")
        if event.get("routing_key") != routing_key:
            problems.append("routing_key")
        if event.get("event_action") not in ("trigger", "acknowledge", "resolve"):
            problems.append("event_action")
        if not isinstance(event.get("dedup_key"), str) or not 0 < len(event["dedup_key"]) <= 255:
            problems.append("dedup_key")
        if event.get("event_action") == "trigger":
            payload = event.get("payload") or {}
            if not isinstance(payload.get("summary"), str) or not 0 < len(payload["summary"]) <= 1024:
                problems.append("payload.summary")
            if not isinstance(payload.get("source"), str) or not payload["source"]:
                problems.append("payload.source")
            if payload.get("severity") not in PAGERDUTY_SEVERITIES:
                problems.append("payload.severity")
            if "custom_details" in payload and not isinstance(payload["custom_details"], dict):
                problems.append("payload.custom_details")
            for link in event.get("links", []):
                if set(link) - {"href", "text"} or not link.get("href"):
                    problems.append("links")
        return problems

    return check


def teams_check(request: Request) -> list[str]:
    """Microsoft's webhook message with an Adaptive Card: {"type": "message", "attachments": [{"contentType":
    "application/vnd.microsoft.card.adaptive", "content": {"type": "AdaptiveCard", "version", "body": [...]}}]}."""
    problems = []
    message = request.json()
    if message.get("type") != "message" or not isinstance(message.get("attachments"), list):
        return ["message type or attachments"]
    for attachment in message["attachments"]:
        card = attachment.get("content") or {}
        if attachment.get("contentType") != "application/vnd.microsoft.card.adaptive":
            problems.append("contentType")
        if card.get("type") != "AdaptiveCard" or not isinstance(card.get("version"), str):
            problems.append("card type or version")
        if card.get("$schema") != "http://adaptivecards.io/schemas/adaptive-card.json":
            problems.append("$schema")
        for element in card.get("body") or [None]:
            kind = (element or {}).get("type")
            if kind == "TextBlock" and not isinstance(element.get("text"), str):
                problems.append("TextBlock.text")
            elif kind == "FactSet" and not all(isinstance(f.get("title"), str) and isinstance(f.get("value"), str)
                                               for f in element.get("facts", [])):  # fmt: skip
                problems.append("FactSet.facts")
            elif kind not in ("TextBlock", "FactSet"):
                problems.append(f"body element {kind}")
        for action in card.get("actions", []):
            if action.get("type") != "Action.OpenUrl" or not action.get("url") or not action.get("title"):
                problems.append("actions")
    return problems


def discord_check(request: Request) -> list[str]:
    """Discord's Execute Webhook: `content` (at most 2,000 characters) and/or `embeds` (at most 10; title 256,
    description 4,096, at most 25 fields of 256/1,024, footer 2,048, 6,000 characters in all)."""
    problems = []
    message = request.json()
    content, embeds = message.get("content"), message.get("embeds", [])
    if not content and not embeds:
        problems.append("content or embeds")
    if content is not None and len(content) > 2000:
        problems.append(f"content of {len(content)} characters")
    if len(embeds) > 10:
        problems.append("embeds")
    for embed in embeds:
        fields = embed.get("fields", [])
        if len(embed.get("title", "")) > 256 or len(embed.get("description", "")) > 4096 or len(fields) > 25:
            problems.append("embed title, description or fields")
        if any(len(f["name"]) > 256 or len(f["value"]) > 1024 or not f["name"] or not f["value"] for f in fields):
            problems.append("embed field")
        total = len(embed.get("title", "")) + len(embed.get("description", "")) + len(embed.get("footer", {}).get(
            "text", "")) + sum(len(f["name"]) + len(f["value"]) for f in fields)  # fmt: skip
        if total > 6000:
            problems.append(f"embed of {total} characters")
    return problems
