"""What one of OpenAI's cost line items bills, so that reconciliation can set it against our calls: a model's use, a
built-in tool's calls, or a charge that no API call makes.

The line items OpenAI's Costs API reports (`group_by=line_item`), by route:
    text, embeddings      "gpt-4o-mini-2024-07-18, input", "gpt-4o-mini-2024-07-18, cached input", "..., output"
    fine-tuned models     "ft:gpt-4.1-mini-2025-04-14:acme:triage:B7x9kQ2d, input"
    images                "gpt-image-1, input", "gpt-image-1, output"; per image "dall-e-3" (or "dall-e-3, hd")
    audio                 "tts-1", "whisper-1", "gpt-4o-transcribe, input", "gpt-realtime, input audio", ...
    built-in tools        "web search tool calls" (or "Web search tool calls | gpt-4o-mini"), "file search tool calls",
                          "code interpreter sessions"
    billed outside calls  "vector store storage", "fine-tuning training" (or "fine-tuning, training")
A model's line item names the model before the comma, with or without its dated snapshot suffix; the calls that
incurred a tool line item are the ones whose row counts that tool (`web_search_calls` > 0 for web search).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

SNAPSHOT_RE = r"-(\d{4}-\d{2}-\d{2}|\d{4})$"  # -2024-07-18, or the older -0613 / -0125
_SNAPSHOT = re.compile(SNAPSHOT_RE)
# Line item prefix → the column counting that tool's billed calls (per call in llm_calls; summed per day in
# llm_calls_daily, which reconciliation reads).
TOOL_COLUMNS = {
    "web search": "web_search_calls",
    "file search": "file_search_calls",
    "code interpreter": "code_interpreter_sessions",
}
# Words only charges without a call carry: storage by the GB-day, fine-tuning jobs by the trained token.
_OUTSIDE_CALLS = re.compile(r"\b(storage|training)\b")

MODEL, TOOL, OUTSIDE_CALLS = "model", "tool", "outside_calls"


@dataclass(frozen=True)
class Billed:
    kind: str  # MODEL, TOOL or OUTSIDE_CALLS
    model: str | None  # the model, without its snapshot suffix: the one billed, or the one a tool line item names
    tool: str | None = None  # TOOL: the llm_calls column counting its calls


def model_name(text: str | None) -> str | None:
    """A model name as both sides are compared: trimmed, lower case, without its dated snapshot suffix."""
    if text is None:
        return None
    name = _SNAPSHOT.sub("", text.strip().lower())
    return name or None


def classify(line_item: str | None) -> Billed:
    """What `line_item` bills (see the module's docstring for the forms)."""
    text = (line_item or "").strip().lower()
    head = text.split(",", 1)[0]
    if _OUTSIDE_CALLS.search(text):
        return Billed(OUTSIDE_CALLS, model_name(head))
    for prefix, column in TOOL_COLUMNS.items():
        if text.startswith(prefix):
            _, _, named = text.partition("|")
            return Billed(TOOL, model_name(named), column) if named.strip() else Billed(TOOL, None, column)
    return Billed(MODEL, model_name(head))
