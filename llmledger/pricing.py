"""The one money vocabulary: a call's `Usage`, rates from `genai-prices` (looked up once per model x tier x day and
cached), costs as exact `Decimal`, and the cost attributes a span carries.

The collector's price book prices every stored call with these rates; the wrapper, its batch results and the sample
data generator put `cost_attributes` on each span (docs/architecture.md, Money).
"""

from __future__ import annotations

import contextlib
import functools
import time
from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import genai_prices
from genai_prices import data_snapshot
from genai_prices.types import TieredPrices

from llmledger import price_supplement
from llmledger import semconv as sc

PRICE_VERSION = f"genai-prices=={genai_prices.__version__}+supplement.{price_supplement.SUPPLEMENT_VERSION}"
# The list bundled with the package, held apart from genai-prices' process-wide snapshot (which its own updater, or
# an app, may replace): the collector prices with an explicit list (collector/money/price_lists.py).
BUNDLED_SNAPSHOT = data_snapshot.get_snapshot()


def list_version(data_sha256: str) -> str:
    """The version of a price list fetched at run time: the package that parses it, the data's hash, our supplement."""
    return (
        f"genai-prices=={genai_prices.__version__}+data.{data_sha256[:12]}"
        f"+supplement.{price_supplement.SUPPLEMENT_VERSION}"
    )


_PER_MILLION = Decimal(1_000_000)
# Tiers that the response may report and that change the per-token price; `scale` is pre-paid units.
_PRICED_TIERS = frozenset({"flex", "priority", "fast"})
UNPRICED_TIERS = frozenset({"scale"})


@dataclass(frozen=True, slots=True, kw_only=True)
class Usage:
    """What a call is billed on, as OpenAI bills it: cached, cache-write, audio and image tokens are inside
    `input_tokens`; reasoning, audio and image tokens inside `output_tokens`; the other units (images, characters,
    audio seconds, built-in tool calls) stand alone. The names are the `llm_calls` columns'; keywords only, so that
    no two counts can trade places."""

    input_tokens: int = 0
    cached_input_tokens: int = 0
    cache_write_tokens: int = 0
    output_tokens: int = 0
    input_audio_tokens: int = 0
    output_audio_tokens: int = 0
    input_image_tokens: int = 0
    output_image_tokens: int = 0
    images: int = 0
    image_size: str | None = None
    image_quality: str | None = None
    input_characters: int = 0
    audio_seconds: float = 0.0
    web_search_calls: int = 0
    file_search_calls: int = 0
    code_interpreter_sessions: int = 0

    @classmethod
    def from_attributes(cls, attrs: Mapping[str, Any]) -> Usage:
        """From a span's attributes (the wrapper's, or a batch result line's)."""
        return cls(
            input_tokens=attrs.get(sc.GEN_AI_USAGE_INPUT_TOKENS) or 0,
            cached_input_tokens=attrs.get(sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS) or 0,
            cache_write_tokens=attrs.get(sc.GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS) or 0,
            output_tokens=attrs.get(sc.GEN_AI_USAGE_OUTPUT_TOKENS) or 0,
            input_audio_tokens=attrs.get(sc.GEN_AI_USAGE_AUDIO_INPUT_TOKENS) or 0,
            output_audio_tokens=attrs.get(sc.GEN_AI_USAGE_AUDIO_OUTPUT_TOKENS) or 0,
            input_image_tokens=attrs.get(sc.GEN_AI_USAGE_IMAGE_INPUT_TOKENS) or 0,
            output_image_tokens=attrs.get(sc.GEN_AI_USAGE_IMAGE_OUTPUT_TOKENS) or 0,
            images=attrs.get(sc.USAGE_IMAGES) or 0,
            image_size=attrs.get(sc.IMAGE_SIZE),
            image_quality=attrs.get(sc.IMAGE_QUALITY),
            input_characters=attrs.get(sc.USAGE_INPUT_CHARACTERS) or 0,
            audio_seconds=attrs.get(sc.USAGE_AUDIO_SECONDS) or 0.0,
            web_search_calls=attrs.get(sc.USAGE_WEB_SEARCH_CALLS) or 0,
            file_search_calls=attrs.get(sc.USAGE_FILE_SEARCH_CALLS) or 0,
            code_interpreter_sessions=attrs.get(sc.USAGE_CODE_INTERPRETER_SESSIONS) or 0,
        )

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Usage:
        """From an `llm_calls` row (NULL counts as 0)."""
        values = {name: row.get(name) or 0 for name in _COUNT_FIELDS}
        return cls(**values, image_size=row.get("image_size"), image_quality=row.get("image_quality"))


_COUNT_FIELDS = tuple(field.name for field in fields(Usage) if field.name not in ("image_size", "image_quality"))


@dataclass(frozen=True, slots=True)
class Rate:
    """USD per token, and the higher rate that applies to the whole call above an input-token threshold."""

    base: Decimal
    tiers: tuple[tuple[int, Decimal], ...] = ()  # (input-token threshold, rate), ascending

    def at(self, total_input_tokens: int) -> Decimal:
        rate = self.base
        for start, tier_rate in self.tiers:
            if total_input_tokens > start:
                rate = tier_rate
        return rate


@dataclass(frozen=True, slots=True)
class Rates:
    """One model's rates at one tier: per token (audio and image tokens at their own rate when the list has one),
    per unit for what is billed otherwise, and whether genai-prices lacked the tier (or the provider the model)."""

    input: Rate
    cached_input: Rate
    cache_write: Rate
    output: Rate
    tier_fallback: bool
    input_audio: Rate | None = None  # None: audio tokens at the text rate
    output_audio: Rate | None = None
    input_image: Rate | None = None  # None: image tokens at the text rate
    output_image: Rate | None = None
    per_unit: tuple[tuple[str, Decimal], ...] = ()  # (Usage field, USD per unit): characters, audio seconds, tools
    per_image: tuple[tuple[str, str, Decimal], ...] = ()  # (quality, size, USD per image) for per-image models
    provider_fallback: bool = False  # priced at OpenAI's list price: the provider's own list lacks the model

    def cost(self, usage: Usage) -> Decimal:
        """Exact USD. Above a long-context threshold every token of the call moves to the higher rate."""
        total_input = usage.input_tokens
        special_input = usage.cached_input_tokens + usage.cache_write_tokens + usage.input_audio_tokens
        uncached = max(total_input - special_input - usage.input_image_tokens, 0)
        text_output = max(usage.output_tokens - usage.output_audio_tokens - usage.output_image_tokens, 0)
        cost = uncached * self.input.at(total_input) + text_output * self.output.at(total_input)
        # Most calls have none of these: a term of 0 tokens adds nothing (and costs a Decimal multiplication).
        if usage.cached_input_tokens:
            cost += usage.cached_input_tokens * self.cached_input.at(total_input)
        if usage.cache_write_tokens:
            cost += usage.cache_write_tokens * self.cache_write.at(total_input)
        if usage.input_audio_tokens:
            cost += usage.input_audio_tokens * (self.input_audio or self.input).at(total_input)
        if usage.input_image_tokens:
            cost += usage.input_image_tokens * (self.input_image or self.input).at(total_input)
        if usage.output_audio_tokens:
            cost += usage.output_audio_tokens * (self.output_audio or self.output).at(total_input)
        if usage.output_image_tokens:
            cost += usage.output_image_tokens * (self.output_image or self.output).at(total_input)
        for name, rate in self.per_unit:
            amount = getattr(usage, name)
            if amount:
                cost += Decimal(str(amount)) * rate
        if usage.images and self.per_image:
            cost += usage.images * self.image_price(usage.image_quality, usage.image_size)
        return cost

    def text_cost(self, input_tokens: int, output_tokens: int) -> Decimal:
        """`cost(Usage(input_tokens=..., output_tokens=...))` without building a Usage (the guard's worst case, on the
        app's thread)."""
        return input_tokens * self.input.at(input_tokens) + output_tokens * self.output.at(input_tokens)

    def image_price(self, quality: str | None, size: str | None) -> Decimal:
        """The per-image price for a quality and size; the first listed (the API's default) when not given."""
        default_quality, default_size, default_price = self.per_image[0]
        for listed_quality, listed_size, price in self.per_image:
            if listed_quality == (quality or default_quality) and listed_size == (size or default_size):
                return price
        return default_price

    def unpriced_units(self, usage: Usage) -> list[str]:
        """Units the call used that these rates don't price (its cost leaves them out)."""
        priced = {name for name, _ in self.per_unit}
        missing = [name for name in _UNIT_FIELDS if getattr(usage, name) and name not in priced]
        if usage.images and not self.per_image and not usage.output_image_tokens:
            missing.append("images")
        return missing


def price_context(service_tier: str | None, batch: bool) -> dict[str, str] | None:
    """genai-prices' request context: Batch API first, then the tier the response reported."""
    if batch:
        return {"processing": "batch"}
    if service_tier in _PRICED_TIERS:
        return {"service_tier": service_tier}
    return None


def _as_rate(price: Decimal | TieredPrices | None) -> Rate | None:
    if price is None:
        return None
    if isinstance(price, TieredPrices):
        return Rate(price.base / _PER_MILLION, tuple((tier.start, tier.price / _PER_MILLION) for tier in price.tiers))
    return Rate(price / _PER_MILLION)


def _variant_matches(model_info: Any, context: dict[str, str], when: datetime) -> bool:
    return any(
        all(context.get(key) == value for key, value in variant.when.items())
        and (variant.constraint is None or variant.constraint.active(when))
        for variant in model_info.price_variants or ()
    )


# Units billed other than by the token: (Usage field, genai-prices price keys in order of preference, units per price).
_UNIT_PRICE_KEYS: tuple[tuple[str, tuple[str, ...], Decimal], ...] = (
    ("input_characters", ("input_mchars",), Decimal(1_000_000)),
    ("audio_seconds", ("input_audio_hours", "audio_hours"), Decimal(3600)),
    ("web_search_calls", ("web_searches_kcount",), Decimal(1000)),
    ("file_search_calls", ("storage_searches_kcount",), Decimal(1000)),
    ("code_interpreter_sessions", ("code_executions_kcount",), Decimal(1000)),
)
_UNIT_FIELDS = tuple(name for name, _, _ in _UNIT_PRICE_KEYS)
# gen_ai.provider.name values whose genai-prices id differs (genai-prices matches the rest by name).
_GENAI_PRICES_PROVIDER = {sc.PROVIDER_AZURE: "azure", "azure.ai.inference": "azure", "x_ai": "x-ai"}
_OPENAI_FAMILY = frozenset({sc.PROVIDER_OPENAI, sc.PROVIDER_AZURE, sc.PROVIDER_OPENAI_COMPATIBLE})


def _find_model(model: str, provider: str, snapshot: data_snapshot.DataSnapshot | None) -> tuple[Any, bool] | None:
    """genai-prices' entry for `model` at `provider` in `snapshot` (None: genai-prices' current one), and whether it
    is OpenAI's list standing in for an OpenAI model that the provider's own list (Azure's) lacks."""
    snapshot = snapshot or data_snapshot.get_snapshot()
    provider_id = _GENAI_PRICES_PROVIDER.get(provider, provider)
    found, model_info = None, None
    if provider != sc.PROVIDER_OPENAI_COMPATIBLE:
        with contextlib.suppress(LookupError):
            found, model_info = snapshot.find_provider_model(model, None, provider_id, None)
    if model_info is not None and (provider not in _OPENAI_FAMILY or model_info in found.models):
        return model_info, False
    if provider in _OPENAI_FAMILY and provider != sc.PROVIDER_OPENAI:
        try:
            return snapshot.find_provider_model(model, None, "openai", None)[1], True
        except LookupError:
            return None
    return (model_info, False) if model_info is not None else None


def context_window(model: str, provider: str = sc.PROVIDER_OPENAI) -> int | None:
    """The model's context window in tokens as genai-prices lists it (None: not listed)."""
    found = _find_model(model, provider, None)
    window = getattr(found[0], "context_window", None) if found is not None else None
    return window if isinstance(window, int) and window > 0 else None


def _unit_rates(prices: Any, provider: str) -> tuple[tuple[str, Decimal], ...]:
    rates: dict[str, Decimal] = {}
    for name, keys, per in _UNIT_PRICE_KEYS:
        for key in keys:
            price = getattr(prices, key, None)
            if isinstance(price, Decimal):
                rates[name] = price / per
                break
    if provider in _OPENAI_FAMILY:
        for name, price in price_supplement.OPENAI_TOOL_PRICES.items():
            rates.setdefault(name, price)
    return tuple(rates.items())


def load_rates(
    model: str,
    context: dict[str, str] | None,
    when: datetime,
    provider: str = "openai",
    snapshot: data_snapshot.DataSnapshot | None = None,
) -> Rates | None:
    """Rates for `model` at `provider` at `when` in `context`, from `snapshot` (None: genai-prices' current list);
    None when neither that list nor our supplement of OpenAI list prices it lacks (llmledger/price_supplement.py)
    knows the model."""
    found = _find_model(model, provider, snapshot)
    if found is None:
        return _supplement_rates(model, provider)
    model_info, provider_fallback = found
    prices = model_info.get_prices(when, context)
    input_rate = _as_rate(prices.input_mtok)
    per_unit = _unit_rates(prices, provider)
    if input_rate is None and not any(key in dict(per_unit) for key, _, _ in _UNIT_PRICE_KEYS[:2]):
        return None  # no token price and no character or audio price: genai-prices lists the model unpriced
    zero = Rate(Decimal(0))
    return Rates(
        input=input_rate or zero,
        cached_input=_as_rate(prices.cache_read_mtok) or input_rate or zero,
        cache_write=_as_rate(prices.cache_write_mtok) or input_rate or zero,
        output=_as_rate(prices.output_mtok) or zero,
        # genai-prices silently uses the standard price when no variant matches: say so.
        tier_fallback=context is not None and not _variant_matches(model_info, context, when),
        input_audio=_as_rate(getattr(prices, "input_audio_mtok", None)),
        output_audio=_as_rate(getattr(prices, "output_audio_mtok", None)),
        input_image=_as_rate(getattr(prices, "input_image_mtok", None)),
        output_image=_as_rate(getattr(prices, "output_image_mtok", None)),
        per_unit=per_unit,
        provider_fallback=provider_fallback,
    )


def _supplement_rates(model: str, provider: str) -> Rates | None:
    per_image = price_supplement.PER_IMAGE.get(model) if provider in _OPENAI_FAMILY else None
    if per_image is None:
        return None
    zero = Rate(Decimal(0))
    return Rates(zero, zero, zero, zero, tier_fallback=False, per_image=per_image)


def rates_for(
    model: str,
    service_tier: str | None,
    batch: bool = False,
    when: datetime | None = None,
    provider: str = sc.PROVIDER_OPENAI,
) -> Rates | None:
    """Cached `load_rates` for the UTC day of `when` (default today), so historical prices apply."""
    return _rates_on(when.date() if when else _utc_today(), model, service_tier, batch, provider)


_SECONDS_PER_DAY = 86_400
_today: tuple[int, date] = (-1, date.min)  # (days since the epoch, that UTC date): a datetime per call costs ~1 µs


def _utc_today() -> date:
    global _today
    number = int(time.time()) // _SECONDS_PER_DAY
    if _today[0] != number:
        _today = (number, (_EPOCH + timedelta(days=number)).date())
    return _today[1]


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def rates_on(
    day: date,
    model: str,
    service_tier: str | None,
    batch: bool,
    provider: str,
    snapshot: data_snapshot.DataSnapshot | None = None,
) -> Rates | None:
    """Uncached: the rates of one UTC day (at noon) from `snapshot` (None: genai-prices' current list)."""
    noon = datetime(day.year, day.month, day.day, 12, tzinfo=UTC)
    return load_rates(model, price_context(service_tier, batch), noon, provider, snapshot)


# Bounded: model names come from spans, and a stream of made-up names must not grow memory forever.
@functools.lru_cache(maxsize=4096)
def _rates_on(day: date, model: str, service_tier: str | None, batch: bool, provider: str) -> Rates | None:
    return rates_on(day, model, service_tier, batch, provider)


def cost_attributes(
    usage: Usage,
    model: str,
    service_tier: str | None,
    *,
    batch: bool = False,
    when: datetime | None = None,
    provider: str = sc.PROVIDER_OPENAI,
    known_free: bool = False,
) -> dict[str, Any]:
    """The span's cost estimate in USD (amount, currency, source, price version), or nothing when the model is
    unknown, the server self-hosted or the tier pre-paid (`scale`): a missing estimate, never 0. `known_free`
    (moderations) is a known zero."""
    if known_free:
        cost: Decimal | None = Decimal(0)
    elif service_tier in UNPRICED_TIERS or provider == sc.PROVIDER_SELF_HOSTED:
        return {}
    else:
        rates = rates_for(model, service_tier, batch, when, provider)
        if rates is None:
            return {}
        cost = rates.cost(usage)
    return {
        sc.GEN_AI_USAGE_COST_AMOUNT: float(cost),
        sc.GEN_AI_USAGE_COST_CURRENCY: sc.COST_CURRENCY_USD,
        sc.GEN_AI_USAGE_COST_SOURCE: sc.COST_SOURCE_LOCAL,
        sc.PRICE_VERSION: PRICE_VERSION,
    }
