"""llmledger: spend, latency and reliability of your app's OpenAI calls, as OpenTelemetry spans.

import llmledger
llmledger.configure(service_name="support-bot")   # export to the collector
llmledger.instrument()                            # every OpenAI call becomes a span
with llmledger.attributes(user=user_id, feature="summaries"):
    client.chat.completions.create(...)
"""

from __future__ import annotations

import importlib
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

try:
    __version__ = version("llmledger")
except PackageNotFoundError:  # running from a source tree
    __version__ = "0.0.0"

if TYPE_CHECKING:
    from llmledger.context import attributes
    from llmledger.export.configure import configure, flush
    from llmledger.guard.errors import BudgetExceeded, CircuitOpen
    from llmledger.guard.settings import GuardSettings
    from llmledger.wrapper.instrument import InstrumentHandle, instrument

# Imported on first use: the collector and the dashboard read a few of the package's modules (semconv, pricing,
# credentials), and importing the wrapper (the openai SDK with it) cost each of them ~0.7 s at start.
_EXPORTS = {
    "attributes": ".context",
    "configure": ".export.configure",
    "flush": ".export.configure",
    "BudgetExceeded": ".guard.errors",
    "CircuitOpen": ".guard.errors",
    "GuardSettings": ".guard.settings",
    "InstrumentHandle": ".wrapper.instrument",
    "instrument": ".wrapper.instrument",
}

__all__ = [
    "BudgetExceeded",
    "CircuitOpen",
    "GuardSettings",
    "InstrumentHandle",
    "__version__",
    "attributes",
    "configure",
    "flush",
    "instrument",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'llmledger' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})
