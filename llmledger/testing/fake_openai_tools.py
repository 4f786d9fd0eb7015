"""The output items the fake Responses API adds for built-in tools, in the shapes of `ResponseOutputItem`.

For each built-in tool in a request's `tools` (web search, file search, code interpreter, image generation), in order,
the synthesised response's `output` gets one completed call item before the message. As the API does, the optional
details are only filled in when the request's `include` asks for them: `web_search_call.action.sources`,
`file_search_call.results` and `code_interpreter_call.outputs`; otherwise they are null.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from llmledger.testing.fake_openai_media import PNG_1X1

WEB_SEARCH_TYPES = frozenset(
    {"web_search", "web_search_2025_08_26", "web_search_preview", "web_search_preview_2025_03_11"}
)


def built_in_tool_items(body: Mapping[str, Any], number: int) -> list[dict[str, Any]]:
    """One completed call item per built-in tool in the request, in the request's order."""
    tools = body.get("tools")
    if not isinstance(tools, list):
        return []
    include = body.get("include") if isinstance(body.get("include"), list) else []
    query = _query(body.get("input"))
    items = []
    for tool in tools:
        kind = tool.get("type") if isinstance(tool, Mapping) else None
        item_id = f"fake{number}_{len(items)}"
        if kind in WEB_SEARCH_TYPES:
            items.append(_web_search(f"ws_{item_id}", query, "web_search_call.action.sources" in include))
        elif kind == "file_search":
            items.append(_file_search(f"fs_{item_id}", query, "file_search_call.results" in include))
        elif kind == "code_interpreter":
            container = tool.get("container")
            container_id = container if isinstance(container, str) else f"cntr_fake{number}"
            items.append(_code_interpreter(f"ci_{item_id}", container_id, "code_interpreter_call.outputs" in include))
        elif kind == "image_generation":
            items.append(_image_generation(f"ig_{item_id}", tool, query))
    return items


def item_events(
    tool_items: list[dict[str, Any]], message: Mapping[str, Any]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """A stream's item events (without sequence numbers) to send before and after the message's text deltas.

    Each tool item is added and done before the message; the message's own lifecycle events let
    `client.responses.stream()` accumulate the deltas into it.
    """
    before: list[dict[str, Any]] = []
    for index, item in enumerate(tool_items):
        before.append(
            {"type": "response.output_item.added", "output_index": index, "item": {**item, "status": "in_progress"}}
        )
        before.append({"type": "response.output_item.done", "output_index": index, "item": item})
    where = {"item_id": message["id"], "output_index": len(tool_items), "content_index": 0}
    part = message["content"][0]
    before.append(
        {
            "type": "response.output_item.added",
            "output_index": len(tool_items),
            "item": {**message, "status": "in_progress", "content": []},
        }
    )
    before.append({"type": "response.content_part.added", **where, "part": {**part, "text": ""}})
    after = [
        {"type": "response.output_text.done", **where, "text": part["text"], "logprobs": []},
        {"type": "response.content_part.done", **where, "part": part},
        {"type": "response.output_item.done", "output_index": len(tool_items), "item": message},
    ]
    return before, after


def _web_search(item_id: str, query: str, with_sources: bool) -> dict[str, Any]:
    sources = [{"type": "url", "url": "https://example.com/ledger"}] if with_sources else None
    return {
        "id": item_id,
        "type": "web_search_call",
        "status": "completed",
        "action": {"type": "search", "query": query, "sources": sources},
    }


def _file_search(item_id: str, query: str, with_results: bool) -> dict[str, Any]:
    result = {"file_id": "file-fake1", "filename": "notes.txt", "score": 0.92, "text": "Totals", "attributes": {}}
    return {
        "id": item_id,
        "type": "file_search_call",
        "status": "completed",
        "queries": [query],
        "results": [result] if with_results else None,
    }


def _code_interpreter(item_id: str, container_id: str, with_outputs: bool) -> dict[str, Any]:
    return {
        "id": item_id,
        "type": "code_interpreter_call",
        "status": "completed",
        "code": "print(sum([1, 2, 3]))",
        "container_id": container_id,
        "outputs": [{"type": "logs", "logs": "6\n"}] if with_outputs else None,
    }


def _image_generation(item_id: str, tool: Mapping[str, Any], query: str) -> dict[str, Any]:
    def resolved(name: str, auto: str) -> str:
        value = tool.get(name)
        return auto if value in (None, "", "auto") else str(value)

    return {
        "id": item_id,
        "type": "image_generation_call",
        "status": "completed",
        "action": "generate",
        "background": resolved("background", "opaque"),
        "output_format": resolved("output_format", "png"),
        "quality": resolved("quality", "high"),
        "size": resolved("size", "1024x1024"),
        "revised_prompt": f"A detailed illustration of {query}",
        "result": PNG_1X1,
    }


def _query(value: Any) -> str:
    """The request's last input text, which the fake's tools "search" for."""
    if isinstance(value, str):
        return value
    texts: list[str] = []
    for item in value if isinstance(value, list) else []:
        content = item.get("content") if isinstance(item, Mapping) else None
        if isinstance(content, str):
            texts.append(content)
        elif isinstance(content, list):
            texts.extend(str(part.get("text")) for part in content if isinstance(part, Mapping) and part.get("text"))
    return texts[-1] if texts else ""
