"""Safety and quality signals: facts about a call's content (counts, flags, lengths) for the readiness checklist,
worked out on the finisher's thread from the request body and the response the recorder kept. The text itself
never leaves the process; with signals off (instrument(signals=False), LLMLEDGER_SIGNALS=false) none is computed.

The app's thread pays for nothing of its own: the recorder keeps the `attributes()` scope and the client for every
call anyway; everything else happens here. What spans across calls lives in one `Memory`: the moderation calls seen
(a later generation in the same trace or scope was moderated) and the connection pools that already served a call.
"""

from __future__ import annotations

import functools
import threading
import weakref
from collections import OrderedDict
from collections.abc import Hashable, Mapping
from typing import Any

from opentelemetry import trace

from llmledger import pricing
from llmledger import semconv as sc
from llmledger.wrapper import patterns, tokens
from llmledger.wrapper.output_signals import output_attributes
from llmledger.wrapper.request_signals import Turns, hygiene_attributes, input_attributes, tool_attributes

GENERATIONS = frozenset({"chat_completions", "responses", "completions"})
_MAX_MODERATION_KEYS = 10_000


class Memory:
    """What the signals remember across calls, touched only by the finisher's thread (locked all the same: a flush
    with no finisher thread drains on the caller's)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        # (kind, id) → (end time of the newest moderation call there, the scope object kept alive so its id stays its
        # own). Oldest first; bounded.
        self._moderated: OrderedDict[Hashable, tuple[int, Any]] = OrderedDict()
        self._pools: weakref.WeakSet[Any] = weakref.WeakSet()

    def moderation_ended(self, keys: list[tuple[Hashable, Any]], end_ns: int) -> None:
        with self._lock:
            for key, keep in keys:
                self._moderated[key] = (end_ns, keep)
                self._moderated.move_to_end(key)
            while len(self._moderated) > _MAX_MODERATION_KEYS:
                self._moderated.popitem(last=False)

    def moderated_before(self, keys: list[tuple[Hashable, Any]], end_ns: int) -> bool:
        with self._lock:
            return any((seen := self._moderated.get(key)) is not None and seen[0] <= end_ns for key, _ in keys)

    def pool_reused(self, pool: Any) -> bool | None:
        """Whether `pool` (the client's HTTP client) served an earlier call; None when it can't be told."""
        try:
            with self._lock:
                reused = pool in self._pools
                self._pools.add(pool)
        except TypeError:  # not weakly referenceable
            return None
        return reused


memory = Memory()


def scope_keys(parent: Any, scope: Mapping[str, str] | None) -> list[tuple[Hashable, Any]]:
    """Where a call happened, for linking a moderation call to the generations after it: its trace (when the app
    had a span current) and its `attributes()` block (each block's mapping is its own object)."""
    keys: list[tuple[Hashable, Any]] = []
    span_context = trace.get_current_span(parent).get_span_context()
    if span_context.is_valid:
        keys.append((("trace", span_context.trace_id), None))
    if scope:
        keys.append((("scope", id(scope)), scope))
    return keys


def attributes(recorder: Any) -> dict[str, Any]:
    """Every signal of one ended call (`recorder` is its CallRecorder), for its span."""
    attrs: dict[str, Any] = {sc.SIGNALS_VERSION: patterns.VERSION}
    endpoint, body = recorder.endpoint, recorder.body
    api_type = endpoint.api_type
    if recorder.pool is not None:
        reused = memory.pool_reused(recorder.pool)
        if reused is not None:
            attrs[sc.CLIENT_REUSED] = reused
    keys = scope_keys(recorder.parent, recorder.scope)
    if api_type == "moderations":
        if recorder.error is None and keys:
            memory.moderation_ended(keys, recorder.end_ns)
        return attrs
    turns = Turns(body, api_type)
    attrs.update(hygiene_attributes(body, api_type, turns))
    if api_type not in GENERATIONS:
        return attrs
    attrs.update(input_attributes(turns))
    attrs.update(tool_attributes(body, api_type, turns))
    attrs[sc.REQUEST_MODERATED] = bool(keys) and memory.moderated_before(keys, recorder.end_ns)
    span_attrs = recorder.attrs  # the call's own attributes (none of them a signal)
    reasons = span_attrs.get(sc.GEN_AI_RESPONSE_FINISH_REASONS)
    response_format = attrs.get(sc.REQUEST_RESPONSE_FORMAT)
    attrs.update(output_attributes(recorder.result, recorder.error, recorder.stream_texts, response_format, reasons))
    used = context_used_pct(span_attrs, turns.texts("user"))
    if used is not None:
        attrs[sc.INPUT_CONTEXT_USED_PCT] = used
    return attrs


def context_used_pct(attrs: Mapping[str, Any], user_texts: list[str]) -> float | None:
    """The user-role input's tokens as a share of the model's context window, in percent (four decimals)."""
    model = attrs.get(sc.GEN_AI_RESPONSE_MODEL) or attrs.get(sc.GEN_AI_REQUEST_MODEL)
    if not user_texts or not isinstance(model, str):
        return None
    window = context_window(model, attrs.get(sc.GEN_AI_PROVIDER_NAME) or sc.PROVIDER_OPENAI)
    if window is None:
        return None
    return round(100 * tokens.count_tokens(model, user_texts) / window, 4)


@functools.lru_cache(maxsize=256)
def context_window(model: str, provider: str) -> int | None:
    """genai-prices' context window for the model, else the longest prefix in patterns.CONTEXT_WINDOWS."""
    window = pricing.context_window(model, provider)
    if window is not None:
        return window
    prefixes = [prefix for prefix in patterns.CONTEXT_WINDOWS if model.startswith(prefix)]
    return patterns.CONTEXT_WINDOWS[max(prefixes, key=len)] if prefixes else None
