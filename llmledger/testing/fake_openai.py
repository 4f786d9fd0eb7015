"""A small fake OpenAI API on loopback, for tests, benchmarks and the demo.

It answers `/v1/chat/completions`, `/v1/responses`, `/v1/embeddings` and `/v1/completions` with
well-formed bodies (streams as server-sent events, usage when asked for), sends `x-request-id` and
`x-ratelimit-*` headers, and plays back scripted replies first (for example recorded OpenAI
exchanges), so tests can script errors, retries and exact bodies. Images, audio and moderations are
answered by `fake_openai_media` (which also parses multipart/form-data bodies, recorded as their form
fields); the Responses API's built-in tool calls come from `fake_openai_tools`.

For the Batch API it serves what tests put in `batches` and `files` (`add_batch`, `add_file`):
`GET /v1/batches`, `GET /v1/batches/{id}` and `GET /v1/files/{id}/content`; other GETs answer 404.
"""

from __future__ import annotations

import itertools
import json
import socket
import threading
import time
import zlib
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from llmledger.testing.fake_openai_media import media_answer, parse_multipart
from llmledger.testing.fake_openai_tools import built_in_tool_items, item_events

_WORDS = "the quick brown fox jumps over the lazy dog while the ledger counts every token".split()  # noqa: SIM905


@dataclass
class Reply:
    """One scripted HTTP reply; a streamed body is a list of SSE blocks, each sent as its own chunk."""

    status: int = 200
    body: str | bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)
    events: list[str] | None = None
    delay_s: float = 0.0


@dataclass
class ReceivedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


class FakeOpenAI:
    """`with FakeOpenAI() as fake: OpenAI(base_url=fake.base_url, api_key="sk-test")`."""

    def __init__(
        self, host: str = "127.0.0.1", port: int = 0, latency_s: float = 0.0, keep_requests: int = 10_000
    ) -> None:
        self.latency_s = latency_s
        self.replies: deque[Reply] = deque()
        # The newest requests only: the demo's simulated app and the soak run for hours.
        self.requests: deque[ReceivedRequest] = deque(maxlen=keep_requests)
        self.batches: dict[str, dict[str, Any]] = {}
        self.files: dict[str, bytes] = {}
        self._ids = itertools.count(1)
        self._request_limit: tuple[int, float] | None = None
        self._window = (0.0, 0)  # (start, requests) of the current rate-limit window
        self._lock = threading.Lock()
        self._server = _QuietServer((host, port), _handler_for(self))
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/v1"

    def start(self) -> FakeOpenAI:
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-openai", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> FakeOpenAI:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def enqueue(self, *replies: Reply) -> None:
        """Answer the next requests with these replies, in order, before synthesising any."""
        with self._lock:
            self.replies.extend(replies)

    def limit_requests(self, count: int, window_s: float) -> None:
        """Enforce a request rate limit like OpenAI's: `count` requests per fixed `window_s` window, a 429 beyond it,
        and `x-ratelimit-remaining-requests` / `x-ratelimit-reset-requests` on every answer (None: no limit)."""
        with self._lock:
            self._request_limit = (count, window_s)
            self._window = (0.0, 0)

    def reset(self) -> None:
        with self._lock:
            self._request_limit = None
            self.replies.clear()
            self.requests.clear()
            self.batches.clear()
            self.files.clear()

    def add_batch(self, batch: Mapping[str, Any]) -> None:
        """Serve this Batch object (see `batch_object`) at `/v1/batches/{id}` and in `/v1/batches`."""
        with self._lock:
            self.batches[str(batch["id"])] = dict(batch)

    def add_file(self, file_id: str, content: bytes) -> None:
        """Serve these bytes at `/v1/files/{file_id}/content`."""
        with self._lock:
            self.files[file_id] = content

    def get(self, path: str) -> Reply:
        """The answer to a GET: a stored batch, the list of them, or a stored file's content."""
        path = path.split("?", 1)[0]
        with self._lock:
            if path == "/v1/batches":
                data = list(self.batches.values())[::-1]
                page = {
                    "object": "list",
                    "data": data,
                    "first_id": data[0]["id"] if data else None,
                    "last_id": data[-1]["id"] if data else None,
                    "has_more": False,
                }
                return Reply(200, json.dumps(page))
            if path.startswith("/v1/batches/") and path[len("/v1/batches/") :] in self.batches:
                return Reply(200, json.dumps(self.batches[path[len("/v1/batches/") :]]))
            if path.startswith("/v1/files/") and path.endswith("/content"):
                content = self.files.get(path[len("/v1/files/") : -len("/content")])
                if content is not None:
                    return Reply(200, content, {"content-type": "application/octet-stream"})
        return Reply(404, json.dumps({"error": {"message": "not found", "type": "invalid_request_error"}}))

    def _count_request(self, headers: dict[str, str]) -> Reply | None:
        """Under `limit_requests`: count this request in its window; a 429 reply when the window is used up."""
        count, window_s = self._request_limit  # type: ignore[misc]
        now = time.monotonic()
        with self._lock:
            started, used = self._window
            if now - started >= window_s:
                started, used = now, 0
            used += 1
            self._window = (started, used)
        reset_ms = max(int((started + window_s - now) * 1000), 1)
        headers["x-ratelimit-limit-requests"] = str(count)
        headers["x-ratelimit-remaining-requests"] = str(max(count - used, 0))
        headers["x-ratelimit-reset-requests"] = f"{reset_ms}ms"
        return _rate_limited(headers) if used > count else None

    # --- synthesised answers ----------------------------------------------------------------

    def next_id(self) -> int:
        with self._lock:
            return next(self._ids)

    def answer(self, path: str, body: Mapping[str, Any]) -> Reply:
        number = self.next_id()
        headers = {
            "x-request-id": f"req_fake{number:06d}",
            "x-ratelimit-limit-requests": "10000",
            "x-ratelimit-remaining-requests": str(9999 - number % 10000),
            "x-ratelimit-limit-tokens": "2000000",
            "x-ratelimit-remaining-tokens": str(2000000 - 37 * (number % 1000)),
        }
        if self._request_limit is not None:
            limited = self._count_request(headers)
            if limited is not None:
                return limited
        model = str(body.get("model") or "gpt-4o-mini")
        prompt_tokens = 5 + len(json.dumps(body.get("messages") or body.get("input") or body.get("prompt") or ""))
        prompt_tokens //= 4
        # Words depend on the prompt only, so the same request gets the same answer.
        seed = zlib.crc32(json.dumps(body.get("messages") or body.get("input") or "", sort_keys=True).encode())
        if path.endswith("/embeddings"):
            payload = _embeddings(body, model, prompt_tokens)
        elif path.endswith("/responses"):
            return _responses(body, model, prompt_tokens, number, seed, headers, self.latency_s)
        elif path.endswith("/chat/completions") or path.endswith("/completions"):
            return _chat(path, body, model, prompt_tokens, number, seed, headers, self.latency_s)
        elif (media := media_answer(path, body, number, int(time.time()))) is not None:
            events = None if media.events is None else [sse(event) for event in media.events]
            headers = {**headers, "content-type": media.content_type}
            return Reply(media.status, media.body, headers, events=events, delay_s=self.latency_s)
        else:
            return Reply(404, json.dumps({"error": {"message": f"no route {path}", "type": "invalid_request_error"}}))
        return Reply(200, json.dumps(payload), {**headers, "content-type": "application/json"}, delay_s=self.latency_s)


def batch_object(
    batch_id: str,
    *,
    endpoint: str = "/v1/chat/completions",
    status: str = "completed",
    output_file_id: str | None = None,
    error_file_id: str | None = None,
    created_at: int = 1_700_000_000,
    completed_at: int | None = None,
    completed: int = 0,
    failed: int = 0,
) -> dict[str, Any]:
    """A Batch object as the API returns it."""
    return {
        "id": batch_id,
        "object": "batch",
        "endpoint": endpoint,
        "errors": None,
        "input_file_id": f"file-input-{batch_id}",
        "completion_window": "24h",
        "status": status,
        "output_file_id": output_file_id,
        "error_file_id": error_file_id,
        "created_at": created_at,
        "in_progress_at": created_at + 1,
        "expires_at": created_at + 86_400,
        "finalizing_at": completed_at,
        "completed_at": completed_at,
        "failed_at": None,
        "expired_at": None,
        "cancelling_at": None,
        "cancelled_at": None,
        "request_counts": {"total": completed + failed, "completed": completed, "failed": failed},
        "metadata": None,
    }


def sse(payload: Any, event: str | None = None) -> str:
    """One server-sent event block carrying `payload` as JSON."""
    prefix = f"event: {event}\n" if event else ""
    return f"{prefix}data: {json.dumps(payload)}\n\n"


def _words(count: int, seed: int) -> list[str]:
    return [_WORDS[(seed + i) % len(_WORDS)] for i in range(count)]


def _output_length(body: Mapping[str, Any]) -> int:
    limit = body.get("max_completion_tokens") or body.get("max_tokens") or body.get("max_output_tokens")
    return min(int(limit), 12) if isinstance(limit, int) else 12


def _chat(
    path: str,
    body: Mapping[str, Any],
    model: str,
    prompt_tokens: int,
    number: int,
    seed: int,
    headers: dict[str, str],
    delay: float,
) -> Reply:
    chat = path.endswith("/chat/completions")
    words = _words(_output_length(body), seed)
    finish = "length" if len(words) < 12 else "stop"
    usage = {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": len(words),
        "total_tokens": prompt_tokens + len(words),
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0},
    }
    base = {"id": f"chatcmpl-fake{number}", "created": int(time.time()), "model": f"{model}", "service_tier": "default"}
    if not body.get("stream"):
        if chat:
            choice = {
                "index": 0,
                "message": {"role": "assistant", "content": " ".join(words), "refusal": None, "annotations": []},
                "logprobs": None,
                "finish_reason": finish,
            }
            payload = {**base, "object": "chat.completion", "choices": [choice], "usage": usage}
        else:
            choice = {"index": 0, "text": " ".join(words), "logprobs": None, "finish_reason": finish}
            payload = {**base, "object": "text_completion", "choices": [choice], "usage": usage}
        return Reply(200, json.dumps(payload), {**headers, "content-type": "application/json"}, delay_s=delay)
    include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
    events = []
    kind = "chat.completion.chunk" if chat else "text_completion"
    for i, word in enumerate(words):
        text = word if i == 0 else " " + word
        if chat:
            delta = {"role": "assistant", "content": text} if i == 0 else {"content": text}
            choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": None}
        else:
            choice = {"index": 0, "text": text, "logprobs": None, "finish_reason": None}
        chunk = {**base, "object": kind, "choices": [choice]}
        if include_usage:
            chunk["usage"] = None
        events.append(sse(chunk))
    last = (
        {"index": 0, "delta": {}, "logprobs": None, "finish_reason": finish}
        if chat
        else {
            "index": 0,
            "text": "",
            "logprobs": None,
            "finish_reason": finish,
        }
    )
    final = {**base, "object": kind, "choices": [last]}
    if include_usage:
        final["usage"] = None
    events.append(sse(final))
    if include_usage:
        events.append(sse({**base, "object": kind, "choices": [], "usage": usage}))
    events.append("data: [DONE]\n\n")
    return Reply(200, b"", {**headers, "content-type": "text/event-stream"}, events=events, delay_s=delay)


def _responses(
    body: Mapping[str, Any],
    model: str,
    prompt_tokens: int,
    number: int,
    seed: int,
    headers: dict[str, str],
    delay: float,
) -> Reply:
    words = _words(_output_length(body), seed)
    text = " ".join(words)
    status = "incomplete" if len(words) < 12 else "completed"
    tool_items = built_in_tool_items(body, number)
    response = {
        "id": f"resp_fake{number}",
        "object": "response",
        "created_at": int(time.time()),
        "status": status,
        "incomplete_details": {"reason": "max_output_tokens"} if status == "incomplete" else None,
        "model": model,
        "output": [
            *tool_items,
            {
                "id": f"msg_fake{number}",
                "type": "message",
                "status": "completed",
                "role": "assistant",
                "content": [{"type": "output_text", "text": text, "annotations": []}],
            },
        ],
        "parallel_tool_calls": True,
        "tool_choice": "auto",
        # The API echoes the request's tools; requests without built-in tools keep the fake's original answer.
        "tools": list(body["tools"]) if tool_items else [],
        "service_tier": "default",
        "usage": {
            "input_tokens": prompt_tokens,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": len(words),
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": prompt_tokens + len(words),
        },
    }
    if not body.get("stream"):
        return Reply(200, json.dumps(response), {**headers, "content-type": "application/json"}, delay_s=delay)
    created = {**response, "status": "in_progress", "output": [], "usage": None, "incomplete_details": None}
    events = [sse({"type": "response.created", "sequence_number": 0, "response": created}, "response.created")]
    # Without built-in tools the fake keeps its original, shorter stream (no output item events).
    before, after = item_events(tool_items, response["output"][-1]) if tool_items else ([], [])
    for item_event in before:
        events.append(sse({**item_event, "sequence_number": len(events)}, item_event["type"]))
    for i, word in enumerate(words):
        delta = word if i == 0 else " " + word
        event = {
            "type": "response.output_text.delta",
            "sequence_number": len(events),
            "item_id": f"msg_fake{number}",
            "output_index": len(tool_items),
            "content_index": 0,
            "delta": delta,
            "logprobs": [],
        }
        events.append(sse(event, event["type"]))
    for item_event in after:
        events.append(sse({**item_event, "sequence_number": len(events)}, item_event["type"]))
    final_type = "response.completed" if status == "completed" else "response.incomplete"
    events.append(sse({"type": final_type, "sequence_number": len(events), "response": response}, final_type))
    return Reply(200, b"", {**headers, "content-type": "text/event-stream"}, events=events, delay_s=delay)


def _embeddings(body: Mapping[str, Any], model: str, prompt_tokens: int) -> dict[str, Any]:
    inputs = body.get("input")
    count = len(inputs) if isinstance(inputs, list) and inputs and not isinstance(inputs[0], int) else 1
    dimensions = body.get("dimensions") if isinstance(body.get("dimensions"), int) else 8
    if body.get("encoding_format") == "base64":
        import base64
        import struct

        vector: Any = base64.b64encode(struct.pack(f"<{dimensions}f", *([0.125] * dimensions))).decode()
    else:
        vector = [0.125] * dimensions
    data = [{"object": "embedding", "index": i, "embedding": vector} for i in range(count)]
    return {
        "object": "list",
        "data": data,
        "model": model,
        "usage": {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens},
    }


def _rate_limited(headers: Mapping[str, str]) -> Reply:
    error = {"error": {"message": "Rate limit reached for requests", "type": "requests", "code": "rate_limit_exceeded"}}
    return Reply(429, json.dumps(error), headers)


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that hangs up mid-stream (an abandoned stream, a timeout test) is expected here.
        pass


def _handler_for(fake: FakeOpenAI) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def setup(self) -> None:
            super().setup()
            # Each SSE event is its own small write: don't let Nagle's algorithm hold them back.
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's name
            pass

        def do_GET(self) -> None:
            with fake._lock:
                fake.requests.append(ReceivedRequest("GET", self.path, dict(self.headers), None))
            self._send(fake.get(self.path))

        def do_POST(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            raw = self.rfile.read(length) if length else b""
            content_type = self.headers.get("content-type") or ""
            try:
                if content_type.lower().startswith("multipart/form-data"):
                    body = parse_multipart(content_type, raw)
                else:
                    body = json.loads(raw) if raw else {}
            except ValueError:
                body = {}
            with fake._lock:
                fake.requests.append(ReceivedRequest("POST", self.path, dict(self.headers), body))
                reply = fake.replies.popleft() if fake.replies else None
            if reply is None:
                reply = fake.answer(self.path, body if isinstance(body, dict) else {})
            self._send(reply)

        def _send(self, reply: Reply) -> None:
            if reply.delay_s:
                time.sleep(reply.delay_s)
            try:
                self.send_response(reply.status)
                headers = {k.lower(): v for k, v in reply.headers.items()}
                headers.setdefault("content-type", "application/json")
                for key, value in headers.items():
                    if key not in ("content-length", "transfer-encoding"):
                        self.send_header(key, value)
                if reply.events is None:
                    payload = reply.body.encode() if isinstance(reply.body, str) else reply.body
                    self.send_header("content-length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                    return
                self.send_header("transfer-encoding", "chunked")
                self.end_headers()
                for event in reply.events:
                    data = event.encode()
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
                    self.wfile.flush()
                self.wfile.write(b"0\r\n\r\n")
                self.wfile.flush()
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True

    return Handler
