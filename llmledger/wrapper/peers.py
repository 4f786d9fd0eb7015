"""Other OpenAI instrumentations active in this process, named once in the log.

Each of them reports every call as a span of its own; the collector keeps one row per call (the richest report,
ours; docs/architecture.md, One row per call), so nothing is counted twice, but the app still pays for building and
exporting the other spans, and a collector that isn't ours would count them all. We look only at what is already
loaded: the markers their patches leave on the openai SDK's classes, never importing a package to find out.

  - OpenTelemetry's openai-v2, OpenLLMetry and OpenLIT wrap resource methods (`Completions.create`, ...) with
    `wrapt`, whose wrapper object keeps the wrapping function (`_self_wrapper`): its module names the package.
  - Logfire sets `_is_instrumented_by_logfire` on the client class it instrumented (or on one client).
"""

from __future__ import annotations

import logging
import sys
import threading
from typing import Any

log = logging.getLogger("llmledger")

# (module, class, method) the peers patch: chat completions, responses, embeddings.
PATCH_POINTS = (
    ("openai.resources.chat.completions", "Completions", "create"),
    ("openai.resources.chat.completions", "AsyncCompletions", "create"),
    ("openai.resources.responses", "Responses", "create"),
    ("openai.resources.embeddings", "Embeddings", "create"),
)
# The package a wrapping function comes from → the instrumentation's name. Longer prefixes first.
_OWNERS = (
    ("opentelemetry.instrumentation.openai_v2", "OpenTelemetry openai-v2"),
    ("opentelemetry.instrumentation.openai", "OpenLLMetry"),
    ("openlit", "OpenLIT"),
    ("logfire", "Logfire"),
)
_LOGFIRE_MARK = "_is_instrumented_by_logfire"
_MAX_LAYERS = 8

_lock = threading.Lock()
_warned = False


def active_peers(client: Any = None) -> list[str]:
    """The names of the other OpenAI instrumentations active now (for `client` too, when given), sorted."""
    found: set[str] = set()
    for module_name, class_name, method_name in PATCH_POINTS:
        module = sys.modules.get(module_name)  # not imported: nothing has patched it
        method = getattr(getattr(module, class_name, None), "__dict__", {}).get(method_name)
        for _ in range(_MAX_LAYERS):  # peers wrap one another: each layer keeps the one below in __wrapped__
            wrapper = getattr(method, "_self_wrapper", None)
            if wrapper is None:
                break
            if (name := _owner(getattr(wrapper, "__module__", None))) is not None:
                found.add(name)
            method = getattr(method, "__wrapped__", None)
    openai = sys.modules.get("openai")
    for target in (getattr(openai, "OpenAI", None), getattr(openai, "AsyncOpenAI", None), client):
        if target is not None and getattr(target, _LOGFIRE_MARK, False) is True:
            found.add("Logfire")
    return sorted(found)


def _owner(module: str | None) -> str | None:
    if not module:
        return None
    for prefix, name in _OWNERS:
        if module == prefix or module.startswith(prefix + "."):
            return name
    return None


def warn_once(client: Any = None) -> None:
    """At the first call we record: say which other instrumentations report it too, and what the collector does."""
    global _warned
    if _warned:
        return
    with _lock:
        if _warned:
            return
        _warned = True
    if peers := active_peers(client):
        log.warning(
            "llmledger: %s also instrument(s) the OpenAI SDK in this process, so each call is reported more than "
            "once. The llmledger collector keeps one row per call (ours, the richest report; the others are recorded "
            "in its also_reported_by column and counted in llmledger_duplicate_reports_total); another backend "
            "receiving all of these spans would count such calls twice. Turn the other instrumentation off if you "
            "don't need its spans.",
            ", ".join(peers),
        )


def reset() -> None:
    """Warn again at the next call (tests)."""
    global _warned
    with _lock:
        _warned = False
