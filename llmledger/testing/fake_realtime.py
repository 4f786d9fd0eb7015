"""A fake OpenAI Realtime API on loopback, for tests: a WebSocket server (the `websockets` package's asyncio server,
on an event loop of its own in a background thread) speaking enough of the protocol, in the event shapes of the
SDK's types, for a client to hold a conversation.

    with FakeRealtime() as fake:
        client = OpenAI(base_url=fake.base_url, api_key="sk-...")  # the SDK turns http:// into ws://
        with client.realtime.connect(model="gpt-realtime") as connection:
            ...
        # client.beta.realtime uses wss:// unless told: OpenAI(..., websocket_base_url=fake.websocket_url)

On connect: `session.created` (the GA shape; the beta shape when the client sends `OpenAI-Beta: realtime=v1`).
`session.update` → `session.updated`; `conversation.item.create` → the item added; `input_audio_buffer.append`
then `commit` → a user audio item; `response.create` → `response.created`, the output item and content part, a delta
per word (text; or audio with its transcript), their `done` events and `response.done` with usage;
`response.cancel` → an error (every response is already done); any other event → an `invalid_request_error`.
`fail_next_response()` and `cancel_next_response()` script how the next response ends; `response_delay_s` holds
each `response.created` back, so that a response's own time can be told from the time it was asked for.

Usage is deterministic, from the conversation so far:
  - text: one token per whitespace-separated word (instructions, user text, the assistant's text or transcript);
  - audio in: one token per `AUDIO_BYTES_PER_TOKEN` bytes appended (100 ms of 24 kHz 16-bit mono PCM);
  - the n-th response of a connection answers with the first n + 2 of `WORDS` (cycling); with audio output it also
    has `AUDIO_TOKENS_PER_WORD` audio tokens a word, which are audio input to later responses;
  - input = instructions + every item of the conversation (earlier answers included); what the connection's
    previous response read of it is cached (split by modality in `cached_tokens_details`; unlike OpenAI, with no
    1,024-token minimum).
A failed response reports its input and no output; a cancelled one stops after its first word.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import logging
import threading
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

WORDS = "the quick brown fox jumps over the lazy dog".split()  # noqa: SIM905
AUDIO_BYTES_PER_TOKEN = 4800
AUDIO_TOKENS_PER_WORD = 5
DEFAULT_INSTRUCTIONS = "Answer briefly."
_SERVER_ERROR = "The server had an error while processing your request."
_AUDIO_FORMAT = {"type": "audio/pcm", "rate": 24000}
# Connections opening and closing are the tests' business, not news for their output.
_log = logging.getLogger(__name__)
_log.setLevel(logging.WARNING)
# GA event and content names → the beta protocol's.
_BETA_NAMES = {
    "response.output_text.delta": "response.text.delta",
    "response.output_text.done": "response.text.done",
    "response.output_audio.delta": "response.audio.delta",
    "response.output_audio.done": "response.audio.done",
    "response.output_audio_transcript.delta": "response.audio_transcript.delta",
    "response.output_audio_transcript.done": "response.audio_transcript.done",
    "conversation.item.added": "conversation.item.created",
    "output_text": "text",
    "output_audio": "audio",
}


@dataclass(frozen=True)
class Outcome:
    """How a scripted response ends: `failed` (with this error) or `cancelled` (for this reason)."""

    status: str
    error_type: str = "server_error"
    message: str = ""
    reason: str = "turn_detected"


@dataclass
class _Item:
    text_tokens: int
    audio_tokens: int


class FakeRealtime:
    """`with FakeRealtime() as fake:` a Realtime API at `fake.base_url` (ws:// at `fake.websocket_url`)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self.port = port
        self.response_delay_s = 0.0
        self.received: list[dict[str, Any]] = []  # every client event, in order
        self.paths: list[str] = []  # every connection's request path, query included
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._script: deque[Outcome] = deque()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    @property
    def websocket_url(self) -> str:
        return f"ws://{self.host}:{self.port}/v1"

    def start(self) -> FakeRealtime:
        ready = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, args=(ready,), name="fake-realtime", daemon=True)
        self._thread.start()
        ready.wait(10)
        if self._server is None:
            self.stop()
            raise RuntimeError("the fake realtime server did not start")
        return self

    def stop(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        if thread.is_alive():
            if self._server is not None:
                asyncio.run_coroutine_threadsafe(self._close_server(), loop).result(10)
            loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        self._loop = self._thread = self._server = None

    def __enter__(self) -> FakeRealtime:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def fail_next_response(self, error_type: str = "server_error", message: str = _SERVER_ERROR) -> None:
        self._enqueue(Outcome("failed", error_type=error_type, message=message))

    def cancel_next_response(self, reason: str = "turn_detected") -> None:
        self._enqueue(Outcome("cancelled", reason=reason))

    def next_id(self, prefix: str) -> str:
        with self._lock:
            return f"{prefix}_fake{next(self._ids):06d}"

    def next_outcome(self) -> Outcome | None:
        with self._lock:
            return self._script.popleft() if self._script else None

    def _enqueue(self, outcome: Outcome) -> None:
        with self._lock:
            self._script.append(outcome)

    # --- the server's thread ------------------------------------------------------------------------------------

    def _run(self, ready: threading.Event) -> None:
        loop = self._loop
        assert loop is not None
        asyncio.set_event_loop(loop)
        try:
            try:
                self._server = loop.run_until_complete(self._listen())
            finally:
                ready.set()
            loop.run_forever()
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    async def _listen(self) -> Server:
        server = await serve(self._converse, self.host, self.port, logger=_log)
        self.port = server.sockets[0].getsockname()[1]
        return server

    async def _close_server(self) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    async def _converse(self, websocket: ServerConnection) -> None:
        request = websocket.request
        assert request is not None
        path = request.path
        with self._lock:
            self.paths.append(path)
        model = parse_qs(urlsplit(path).query).get("model", ["gpt-realtime"])[0]
        beta = "realtime=v1" in (request.headers.get("OpenAI-Beta") or "")
        conversation = Conversation(self, model, beta)
        try:
            await self._send(websocket, [conversation.session_event("session.created")])
            async for message in websocket:
                event = json.loads(message)
                with self._lock:
                    self.received.append(event)
                if event.get("type") == "response.create" and self.response_delay_s:
                    await asyncio.sleep(self.response_delay_s)
                await self._send(websocket, conversation.answer(event))
        except ConnectionClosed:
            pass

    @staticmethod
    async def _send(websocket: ServerConnection, events: Iterable[dict[str, Any]]) -> None:
        for event in events:
            await websocket.send(json.dumps(event))


class Conversation:
    """One connection's session and conversation: client events in, server events out (no I/O)."""

    def __init__(self, fake: FakeRealtime, model: str, beta: bool) -> None:
        self.fake = fake
        self.beta = beta
        self.session: dict[str, Any] = _beta_session(model) if beta else _session(model)
        self.session["id"] = fake.next_id("sess")
        self.conversation_id = fake.next_id("conv")
        self.items: list[_Item] = []
        self.audio_bytes = 0
        self.responses = 0
        self.previous_input = _Item(0, 0)

    def answer(self, event: dict[str, Any]) -> list[dict[str, Any]]:
        kind = event.get("type")
        if kind == "session.update":
            self.session.update(event.get("session") or {})
            return [self.session_event("session.updated")]
        if kind == "conversation.item.create":
            return self._add_user_item(event.get("item") or {})
        if kind == "input_audio_buffer.append":
            self.audio_bytes += len(base64.b64decode(event.get("audio") or ""))
            return []
        if kind == "input_audio_buffer.commit":
            return self._commit_audio()
        if kind == "response.create":
            return self._respond(event.get("response") or {})
        if kind == "response.cancel":
            return [self._error(event, "response_cancel_not_active", "Cancellation failed: no active response found")]
        return [self._error(event, "invalid_value", f"Invalid value: '{kind}'.")]

    def session_event(self, kind: str) -> dict[str, Any]:
        return {"type": kind, "event_id": self.fake.next_id("event"), "session": dict(self.session)}

    # --- conversation items -------------------------------------------------------------------------------------

    def _add_user_item(self, item: dict[str, Any]) -> list[dict[str, Any]]:
        text_tokens = audio_tokens = 0
        for part in item.get("content") or ():
            text_tokens += len(str(part.get("text") or part.get("transcript") or "").split())
            audio_tokens += len(base64.b64decode(part.get("audio") or "")) // AUDIO_BYTES_PER_TOKEN
        self.items.append(_Item(text_tokens, audio_tokens))
        return self._item_added({**item, "id": item.get("id") or self.fake.next_id("item"), "status": "completed"})

    def _commit_audio(self) -> list[dict[str, Any]]:
        item_id = self.fake.next_id("item")
        self.items.append(_Item(0, self.audio_bytes // AUDIO_BYTES_PER_TOKEN))
        self.audio_bytes = 0
        committed = {"type": "input_audio_buffer.committed", "event_id": self.fake.next_id("event"), "item_id": item_id}
        part = {"type": "input_audio", "transcript": None}
        item = {"id": item_id, "type": "message", "role": "user", "status": "completed", "content": [part]}
        return [committed, *self._item_added(item)]

    def _item_added(self, item: dict[str, Any]) -> list[dict[str, Any]]:
        item = {"object": "realtime.item", **item}
        added = {"type": self._name("conversation.item.added"), "event_id": self.fake.next_id("event"), "item": item}
        if self.beta:
            return [added]
        return [added, {"type": "conversation.item.done", "event_id": self.fake.next_id("event"), "item": item}]

    # --- responses ----------------------------------------------------------------------------------------------

    def _respond(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        self.responses += 1
        outcome = self.fake.next_outcome()
        in_conversation = params.get("conversation") != "none"
        modalities = self._modalities(params)
        instructions = params.get("instructions") or self.session.get("instructions") or ""
        text_in = len(instructions.split()) + sum(item.text_tokens for item in self.items)
        audio_in = sum(item.audio_tokens for item in self.items)
        cached = self.previous_input
        self.previous_input = _Item(text_in, audio_in)
        words = [WORDS[index % len(WORDS)] for index in range(self.responses + 2)]
        if outcome is not None and outcome.status == "failed":
            words = []
        elif outcome is not None:
            words = words[:1]
        audio = "audio" in modalities
        answer = _Item(len(words), len(words) * AUDIO_TOKENS_PER_WORD if audio else 0)
        if in_conversation and (outcome is None or outcome.status == "cancelled"):
            self.items.append(answer)
        response_id = self.fake.next_id("resp")
        item_id = self.fake.next_id("item")
        response = self._response(response_id, modalities, in_conversation)
        events = [self._event("response.created", response={**response, "status": "in_progress"})]
        if words:
            events += self._output_events(response_id, item_id, words, audio)
        response["status"] = "completed" if outcome is None else outcome.status
        response["status_details"] = _status_details(outcome)
        if words:
            item_status = "completed" if outcome is None else "incomplete"
            response["output"] = [self._output_item(item_id, words, audio, item_status)]
        response["usage"] = _usage(_Item(text_in, audio_in), cached, answer)
        return [*events, self._event("response.done", response=response)]

    def _modalities(self, params: dict[str, Any]) -> list[str]:
        key = "modalities" if self.beta else "output_modalities"
        return list(params.get(key) or self.session.get(key) or ["audio"])

    def _response(self, response_id: str, modalities: list[str], in_conversation: bool) -> dict[str, Any]:
        response: dict[str, Any] = {
            "id": response_id,
            "object": "realtime.response",
            "status": "in_progress",
            "status_details": None,
            "output": [],
            "conversation_id": self.conversation_id if in_conversation else None,
            "max_output_tokens": "inf",
            "usage": None,
            "metadata": None,
        }
        if self.beta:
            return {**response, "modalities": modalities, "voice": "alloy", "output_audio_format": "pcm16"}
        audio = {"output": {"format": _AUDIO_FORMAT, "voice": "marin"}}
        return {**response, "output_modalities": modalities, "audio": audio}

    def _output_events(self, response_id: str, item_id: str, words: list[str], audio: bool) -> list[dict[str, Any]]:
        at = {"response_id": response_id, "item_id": item_id, "output_index": 0, "content_index": 0}
        empty_part = {"type": "audio", "transcript": ""} if audio else {"type": "text", "text": ""}
        item = {"response_id": response_id, "output_index": 0}
        events = [
            self._event("response.output_item.added", **item, item=self._output_item(item_id, [], audio)),
            self._event("response.content_part.added", **at, part=empty_part),
        ]
        for word in words:
            delta = f"{word} "
            if audio:
                chunk = base64.b64encode(bytes(AUDIO_BYTES_PER_TOKEN // 2)).decode()
                events.append(self._event("response.output_audio.delta", **at, delta=chunk))
                events.append(self._event("response.output_audio_transcript.delta", **at, delta=delta))
            else:
                events.append(self._event("response.output_text.delta", **at, delta=delta))
        text = " ".join(words)
        if audio:
            events.append(self._event("response.output_audio.done", **at))
            events.append(self._event("response.output_audio_transcript.done", **at, transcript=text))
            part = {"type": "audio", "transcript": text}
        else:
            events.append(self._event("response.output_text.done", **at, text=text))
            part = {"type": "text", "text": text}
        events.append(self._event("response.content_part.done", **at, part=part))
        return events

    def _output_item(self, item_id: str, words: list[str], audio: bool, status: str = "in_progress") -> dict[str, Any]:
        text = " ".join(words)
        if not words:
            content: list[dict[str, Any]] = []
        elif audio:
            content = [{"type": self._name("output_audio"), "transcript": text}]
        else:
            content = [{"type": self._name("output_text"), "text": text}]
        item = {"id": item_id, "object": "realtime.item", "type": "message", "role": "assistant"}
        return {**item, "status": status, "content": content}

    def _event(self, kind: str, **fields: Any) -> dict[str, Any]:
        return {"type": self._name(kind), "event_id": self.fake.next_id("event"), **fields}

    def _error(self, event: dict[str, Any], code: str, message: str) -> dict[str, Any]:
        error = {"type": "invalid_request_error", "code": code, "message": message, "param": None}
        return self._event("error", error={**error, "event_id": event.get("event_id")})

    def _name(self, name: str) -> str:
        return _BETA_NAMES.get(name, name) if self.beta else name


def _status_details(outcome: Outcome | None) -> dict[str, Any] | None:
    if outcome is None:
        return None
    if outcome.status == "cancelled":
        return {"type": "cancelled", "reason": outcome.reason, "error": None}
    error = {"type": outcome.error_type, "code": outcome.error_type, "message": outcome.message}
    return {"type": "failed", "reason": None, "error": error}


def _usage(read: _Item, cached: _Item, answer: _Item) -> dict[str, Any]:
    input_tokens = read.text_tokens + read.audio_tokens
    output_tokens = answer.text_tokens + answer.audio_tokens
    cached_details = {"text_tokens": cached.text_tokens, "audio_tokens": cached.audio_tokens, "image_tokens": 0}
    return {
        "total_tokens": input_tokens + output_tokens,
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "input_token_details": {
            "text_tokens": read.text_tokens,
            "audio_tokens": read.audio_tokens,
            "image_tokens": 0,
            "cached_tokens": cached.text_tokens + cached.audio_tokens,
            "cached_tokens_details": cached_details,
        },
        "output_token_details": {"text_tokens": answer.text_tokens, "audio_tokens": answer.audio_tokens},
    }


def _session(model: str) -> dict[str, Any]:
    """A GA session as `session.created` carries it (`RealtimeSessionCreateRequest` plus the server's id fields)."""
    return {
        "type": "realtime",
        "object": "realtime.session",
        "model": model,
        "output_modalities": ["audio"],
        "instructions": DEFAULT_INSTRUCTIONS,
        "tools": [],
        "tool_choice": "auto",
        "max_output_tokens": "inf",
        "tracing": None,
        "truncation": "auto",
        "prompt": None,
        "expires_at": 0,
        "include": None,
        "audio": {
            "input": {"format": _AUDIO_FORMAT, "transcription": None, "noise_reduction": None, "turn_detection": None},
            "output": {"format": _AUDIO_FORMAT, "voice": "marin", "speed": 1.0},
        },
    }


def _beta_session(model: str) -> dict[str, Any]:
    """A beta session (`openai.types.beta.realtime.Session`)."""
    return {
        "object": "realtime.session",
        "model": model,
        "modalities": ["text", "audio"],
        "instructions": DEFAULT_INSTRUCTIONS,
        "voice": "alloy",
        "input_audio_format": "pcm16",
        "output_audio_format": "pcm16",
        "input_audio_transcription": None,
        "turn_detection": None,
        "tools": [],
        "tool_choice": "auto",
        "temperature": 0.8,
        "max_response_output_tokens": "inf",
        "expires_at": 0,
    }
