"""OpenAI list prices that genai-prices (the price list we pin) does not carry, from OpenAI's pricing page.

Only what genai-prices lacks lives here, and genai-prices wins wherever it has a price: per-image models priced by
count x quality x size, and the Code Interpreter container that the Responses API bills per session. Part of the
price version (`SUPPLEMENT_VERSION`), so a changed entry is visible on every row it priced.
"""

from __future__ import annotations

from decimal import Decimal

SUPPLEMENT_VERSION = "2026-12"

# (quality, size, USD per image); the first entry is what the API does when the request names neither.
PER_IMAGE: dict[str, tuple[tuple[str, str, Decimal], ...]] = {
    "dall-e-3": (
        ("standard", "1024x1024", Decimal("0.040")),
        ("standard", "1024x1792", Decimal("0.080")),
        ("standard", "1792x1024", Decimal("0.080")),
        ("hd", "1024x1024", Decimal("0.080")),
        ("hd", "1024x1792", Decimal("0.120")),
        ("hd", "1792x1024", Decimal("0.120")),
    ),
    "dall-e-2": (
        ("standard", "1024x1024", Decimal("0.020")),
        ("standard", "512x512", Decimal("0.018")),
        ("standard", "256x256", Decimal("0.016")),
    ),
}

# USD per unit, for the OpenAI family (OpenAI, Azure OpenAI) whatever the model.
OPENAI_TOOL_PRICES: dict[str, Decimal] = {
    "code_interpreter_sessions": Decimal("0.03"),  # one 1 GB container
}
