"""llmledger: spend, latency and reliability of your app's OpenAI calls, as OpenTelemetry spans.

import llmledger
llmledger.configure(service_name="support-bot")   # export to the collector
llmledger.instrument()                            # every OpenAI call becomes a span
with llmledger.attributes(user=user_id, feature="summaries"):
    client.chat.completions.create(...)
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("llmledger")
except PackageNotFoundError:  # running from a source tree
    __version__ = "0.0.0"

from llmledger.context import attributes
from llmledger.export.configure import configure, flush
from llmledger.guard.errors import BudgetExceeded, CircuitOpen
from llmledger.guard.settings import GuardSettings
from llmledger.wrapper.instrument import InstrumentHandle, instrument

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
