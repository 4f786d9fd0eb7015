"""Signals about what a request asked, from its body alone (pure; run on the finisher's thread): input sanitisation
(special tokens, injection phrases, delimiters), request hygiene (system message, stop, dimensions, response format)
and the tool-use loop (tools described, tool_choice, tool results matching the calls they answer)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from llmledger import semconv as sc
from llmledger.wrapper import patterns

_SYSTEM_ROLES = frozenset({"system", "developer"})
_FUNCTION_TOOLS = frozenset({"function", "custom"})  # tools the model only knows from their description


def get(obj: Any, key: str) -> Any:
    """`obj[key]` of a dict, or the attribute of an SDK object an app passed back in (None when absent)."""
    if obj is None:  # an absent field: neither the Mapping check (an ABC) nor getattr's exception
        return None
    if type(obj) is dict or isinstance(obj, Mapping):
        return obj.get(key)
    return getattr(obj, key, None)


def texts_of(content: Any) -> list[str]:
    """The text of a message's content: a string, or the text parts of a list of parts."""
    if isinstance(content, str):
        return [content]
    if isinstance(content, (list, tuple)):
        found = []
        for part in content:
            text = part if isinstance(part, str) else get(part, "text")
            if isinstance(text, str):
                found.append(text)
        return found
    return []


class Turns:
    """A request's conversation as (role, texts) turns, whatever the API: chat messages, Responses input items and
    instructions, or a completion's prompt (role None: no role to tell user text from the app's)."""

    def __init__(self, body: Mapping[str, Any], api_type: str) -> None:
        self.turns: list[tuple[str | None, list[str]]] = []
        self.items: list[Any] = []  # chat messages or Responses input items, for the tool loop
        if api_type == "chat_completions":
            self.items = _listed(body.get("messages"))
            self.turns = [(get(m, "role"), texts_of(get(m, "content"))) for m in self.items]
        elif api_type == "responses":
            instructions = body.get("instructions")
            if isinstance(instructions, str) and instructions:
                self.turns.append(("system", [instructions]))
            value = body.get("input")
            if isinstance(value, str):
                self.turns.append(("user", [value]))
            else:
                self.items = _listed(value)
                self.turns += [(get(item, "role"), texts_of(get(item, "content"))) for item in self.items]
        elif api_type == "completions":
            prompt = body.get("prompt")
            prompts = [prompt] if isinstance(prompt, str) else _listed(prompt)
            self.turns.append((None, [text for text in prompts if isinstance(text, str)]))

    def texts(self, role: str | None = None) -> list[str]:
        return [text for turn_role, texts in self.turns if role is None or turn_role == role for text in texts]

    @property
    def has_system(self) -> bool:
        return any(role in _SYSTEM_ROLES for role, _ in self.turns)


def _listed(value: Any) -> list[Any]:
    return list(value) if isinstance(value, (list, tuple)) else []


def input_attributes(turns: Turns) -> dict[str, Any]:
    """Input sanitisation: special-token strings anywhere, injection phrases and delimiters in user-role text."""
    special = sum(len(patterns.SPECIAL_TOKEN.findall(text)) for text in turns.texts() if "<|" in text)
    attrs: dict[str, Any] = {sc.INPUT_SPECIAL_TOKENS: special}
    user = turns.texts("user")
    if user:
        attrs[sc.INPUT_INJECTION_PHRASES] = sum(patterns.injection_phrases(text) for text in user)
        attrs[sc.INPUT_USER_DELIMITED] = any(patterns.delimited(text) for text in user)
    return attrs


def hygiene_attributes(body: Mapping[str, Any], api_type: str, turns: Turns) -> dict[str, Any]:
    """Request hygiene: a system message, stop sequences, embeddings dimensions, the response format."""
    if api_type == "embeddings":
        return {sc.REQUEST_DIMENSIONS_SET: body.get("dimensions") is not None}
    attrs: dict[str, Any] = {}
    if api_type in ("chat_completions", "responses"):
        attrs[sc.REQUEST_SYSTEM_MESSAGE] = turns.has_system
    if api_type in ("chat_completions", "completions"):
        attrs[sc.REQUEST_STOP_SET] = bool(body.get("stop"))
    response_format = response_format_type(body, api_type)
    if response_format is not None:
        attrs[sc.REQUEST_RESPONSE_FORMAT] = response_format
    return attrs


def response_format_type(body: Mapping[str, Any], api_type: str) -> str | None:
    """json_schema, json_object or text when the request sets a format (parse() sets json_schema from its type)."""
    if api_type == "responses":
        value = get(get(body.get("text"), "format"), "type")
    else:
        value = get(body.get("response_format"), "type")
    return value if isinstance(value, str) else None


def tool_attributes(body: Mapping[str, Any], api_type: str, turns: Turns) -> dict[str, Any]:
    """The tool-use loop: function tools and how many are described, tool_choice, and in the conversation sent, tool
    results that answer no call of the turn before them and calls left without a result."""
    attrs: dict[str, Any] = {}
    tools = [tool for tool in _listed(body.get("tools")) if get(tool, "type") in _FUNCTION_TOOLS]
    if tools:
        attrs[sc.REQUEST_TOOLS] = len(tools)
        attrs[sc.REQUEST_TOOLS_DESCRIBED] = sum(1 for tool in tools if _description(tool))
        attrs[sc.REQUEST_TOOL_CHOICE_SET] = body.get("tool_choice") is not None
    if api_type == "chat_completions":
        loop = _chat_tool_loop(turns.items)
    elif api_type == "responses":
        loop = _responses_tool_loop(turns.items, body.get("previous_response_id") is not None)
    else:
        loop = None
    if loop is not None:
        attrs[sc.REQUEST_TOOL_RESULTS_UNMATCHED], attrs[sc.REQUEST_TOOL_CALLS_UNANSWERED] = loop
    return attrs


def _description(tool: Any) -> bool:
    function = get(tool, "function")
    description = get(function if function is not None else tool, "description")
    return isinstance(description, str) and bool(description.strip())


def _chat_tool_loop(messages: Iterable[Any]) -> tuple[int, int] | None:
    """(unmatched results, unanswered calls): each `tool` message must answer a call of the assistant turn right
    before it, and every call of that turn needs its result before the next turn."""
    calls: set[str] | None = None  # the ids of the open assistant turn's calls
    answered: set[str] = set()
    unmatched = unanswered = 0
    seen = False
    for message in messages:
        role = get(message, "role")
        if role == "tool":
            seen = True
            call_id = get(message, "tool_call_id")
            if calls is None or call_id not in calls:
                unmatched += 1
            else:
                answered.add(call_id)
            continue
        if calls is not None:
            unanswered += len(calls - answered)
            calls = None
        tool_calls = _listed(get(message, "tool_calls")) if role == "assistant" else []
        if tool_calls:
            seen = True
            calls, answered = {get(call, "id") for call in tool_calls}, set()
    if calls is not None:
        unanswered += len(calls - answered)
    return (unmatched, unanswered) if seen else None


def _responses_tool_loop(items: Iterable[Any], continues: bool) -> tuple[int, int] | None:
    """The same for Responses input items (function_call / function_call_output by call_id). A request continuing an
    earlier response (previous_response_id) answers calls this body doesn't show: its results aren't judged."""
    calls, results = [], []
    for item in items:
        kind = get(item, "type")
        if kind == "function_call":
            calls.append(get(item, "call_id"))
        elif kind == "function_call_output":
            results.append(get(item, "call_id"))
    if not calls and not results:
        return None
    unmatched = 0 if continues else sum(1 for call_id in results if call_id not in calls)
    return unmatched, sum(1 for call_id in calls if call_id not in results)
