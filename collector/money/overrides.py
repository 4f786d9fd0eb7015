"""Negotiated prices: an optional TOML file (`llmledger collector --prices FILE`) laid over genai-prices.

    # USD per million tokens, or a discount off list price; each entry applies from a UTC date on.
    [[price]]
    model = "gpt-4o"            # a model, its dated snapshots (gpt-4o-2024-08-06) too; "*" for every model
    from = 2026-01-01
    input = 2.00                # any of: input, cached_input, cache_write, output, input_audio, output_audio,
    output = 8.00               # input_image, output_image (rates left out stay at list price)

    [[price]]
    model = "*"
    from = 2026-06-01
    discount_pct = 12.5
    tier = "default"            # optional: default, flex or priority (else every tier); batch = true/false too
    provider = "openai"         # optional: a gen_ai.provider.name (azure.ai.openai, openrouter, ...) or "*" for
                                # every provider; an entry without one is OpenAI's

For a call, the entry that applies is the most specific (exact model, then snapshot family, then "*"; among
those, one naming the call's provider before one naming none) and, among those, the one with the latest `from` on
or before the call's UTC day. A call without a provider is OpenAI's. A discount applies to every price of the
model, per-unit and per-image prices included.
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from dataclasses import dataclass, replace
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

from llmledger.pricing import Rate, Rates

RATE_FIELDS = ("input", "cached_input", "cache_write", "output", "input_audio", "output_audio", "input_image",
               "output_image")  # fmt: skip
TIERS = ("default", "flex", "priority")
_KEYS = frozenset({"model", "from", "tier", "batch", "provider", "discount_pct", *RATE_FIELDS})
_SNAPSHOT = re.compile(r"-(\d{4}-\d{2}-\d{2}|\d{4})$")  # gpt-4o-2024-08-06, gpt-4-0613
_PER_MILLION = Decimal(1_000_000)


class OverridesError(ValueError):
    """The overrides file can't be used: says which entry and field, and why."""


@dataclass(frozen=True)
class Override:
    model: str
    starts: date
    tier: str | None
    batch: bool | None
    rates: dict[str, Decimal]  # USD per token
    discount_pct: Decimal | None
    provider: str | None = None  # None: OpenAI's; "*": every provider

    def specificity(self, model: str) -> int:
        """2 exact, 1 snapshot family, 0 "*", -1 no match."""
        if self.model == model:
            return 2
        if _SNAPSHOT.sub("", model) == self.model:
            return 1
        return 0 if self.model == "*" else -1

    def applied_to(self, listed: Rates | None) -> Rates | None:
        if self.discount_pct is not None:
            if listed is None:
                return None
            keep = 1 - self.discount_pct / 100
            return replace(
                listed,
                **{name: _scaled(getattr(listed, name), keep) for name in RATE_FIELDS},
                per_unit=tuple((name, price * keep) for name, price in listed.per_unit),
                per_image=tuple((quality, size, price * keep) for quality, size, price in listed.per_image),
            )
        if listed is None:
            if "input" not in self.rates or "output" not in self.rates:
                return None  # an unknown model needs at least input and output rates
            base = Rate(self.rates["input"])
            listed = Rates(base, base, base, Rate(self.rates["output"]), tier_fallback=False)
        return replace(listed, **{name: Rate(rate) for name, rate in self.rates.items()})


def _scaled(rate: Rate | None, factor: Decimal) -> Rate | None:
    if rate is None:
        return None
    return Rate(rate.base * factor, tuple((start, value * factor) for start, value in rate.tiers))


class PriceOverrides:
    """The parsed file (or none); `version` goes into every row's price_version."""

    def __init__(self, entries: tuple[Override, ...] = (), digest: str | None = None) -> None:
        self.entries = entries
        self.digest = digest

    @classmethod
    def load(cls, path: Path | None) -> PriceOverrides:
        if path is None:
            return cls()
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise OverridesError(f"cannot read the price overrides file {path}: {exc.strerror or exc}") from None
        try:
            document = tomllib.loads(raw.decode(), parse_float=Decimal)  # exact: 0.15 stays 0.15
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise OverridesError(f"{path} is not valid TOML: {exc}") from None
        unknown = set(document) - {"price"}
        if unknown:
            raise OverridesError(f"{path}: unknown table {sorted(unknown)[0]!r} (entries are [[price]])")
        entries = tuple(_entry(index, item) for index, item in enumerate(document.get("price", []), start=1))
        return cls(entries, hashlib.sha256(raw).hexdigest()[:12])

    def version(self, base: str) -> str:
        return f"{base}+overrides.{self.digest}" if self.digest else base

    def find(self, model: str, tier: str | None, batch: bool, day: date, provider: str = "openai") -> Override | None:
        best: tuple[int, bool, date] | None = None
        found = None
        for entry in self.entries:
            specificity = entry.specificity(model)
            if specificity < 0 or entry.starts > day:
                continue
            # An entry naming no provider is OpenAI's (the file's meaning before providers): a negotiated OpenAI
            # discount must not reach Anthropic or OpenRouter calls. "*" names every provider.
            if (entry.provider or "openai") not in (provider, "*"):
                continue
            if entry.tier is not None and entry.tier != (tier or "default"):
                continue
            if entry.batch is not None and entry.batch != batch:
                continue
            rank = (specificity, entry.provider is not None, entry.starts)
            if best is None or rank > best:
                best, found = rank, entry
        return found


def _entry(index: int, item: Any) -> Override:
    where = f"[[price]] entry {index}"
    if not isinstance(item, dict):
        raise OverridesError(f"{where} is not a table")
    unknown = set(item) - _KEYS
    if unknown:
        raise OverridesError(f"{where}: unknown field {sorted(unknown)[0]!r} (known: {', '.join(sorted(_KEYS))})")
    model = item.get("model")
    if not isinstance(model, str) or not model:
        raise OverridesError(f"{where}: 'model' must name a model or be \"*\"")
    starts = item.get("from")
    if not isinstance(starts, date) or hasattr(starts, "hour"):
        raise OverridesError(f"{where}: 'from' must be a date like 2026-01-01 (UTC), not {starts!r}")
    tier = item.get("tier")
    if tier is not None and tier not in TIERS:
        raise OverridesError(f"{where}: 'tier' must be one of {', '.join(TIERS)}, not {tier!r}")
    batch = item.get("batch")
    if batch is not None and not isinstance(batch, bool):
        raise OverridesError(f"{where}: 'batch' must be true or false")
    provider = item.get("provider")
    if provider is not None and (not isinstance(provider, str) or not provider.strip()):
        raise OverridesError(f"{where}: 'provider' must name a provider (gen_ai.provider.name), not {provider!r}")
    rates = {}
    for name in RATE_FIELDS:
        if name in item:
            rates[name] = _money(where, name, item[name]) / _PER_MILLION
    discount = item.get("discount_pct")
    if discount is not None:
        discount = _money(where, "discount_pct", discount)
        if discount > 100:
            raise OverridesError(f"{where}: 'discount_pct' must be between 0 and 100")
    if bool(rates) == (discount is not None):
        raise OverridesError(f"{where}: give either rates ({', '.join(RATE_FIELDS)}) or 'discount_pct', not both/none")
    return Override(model, starts, tier, batch, rates, discount, provider and provider.strip().lower())


def _money(where: str, name: str, value: Any) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, (int, Decimal)):
        raise OverridesError(f"{where}: {name!r} must be a number, not {value!r}")
    number = Decimal(value)
    if not number.is_finite() or number < 0:
        raise OverridesError(f"{where}: {name!r} must be a non-negative number")
    return number
