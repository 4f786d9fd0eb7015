"""The demo's OpenAI bill: what OpenAI's Costs and Usage APIs would report for the sample traffic, plus spend that
no instrumented call accounts for, served by the local fake of those APIs so the Reconciliation page has data.

OpenAI meters the calls the sample apps made: each priced with genai-prices' list rates (the fine-tuned model,
which genai-prices cannot price, at OpenAI's fine-tuned inference rates), costs per UTC day, model snapshot,
project and input/output line item, usage per hour. On top of that, spend the wrapper never saw: images
generated from a script, and an internal tool calling gpt-4.1-mini with a key of its own, without the wrapper.
"""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from opentelemetry.proto.common.v1.common_pb2 import AnyValue

from llmledger import semconv as sc
from llmledger.pricing import Usage, rates_for
from llmledger.testing.fake_openai_admin import CostItem, UsageItem
from sample_data.otlp_file import read_requests, spans

_PER_MILLION = Decimal(1_000_000)
# OpenAI's fine-tuned gpt-4.1-mini inference, USD per million tokens (input, output).
FINE_TUNED_RATES = (Decimal("0.80"), Decimal("3.20"))
UNTRACKED_PROJECT = "proj_Intl4Tq8Lm0Xc3Vb7NsD"  # an internal tool's project: its key never went through the wrapper
IMAGES_PROJECT = "proj_Mkt9Rb2Yw6Kd1Pz5HfQa"


@dataclass
class _Hour:
    """One hour's completions usage of one model, project, batch flag and tier."""

    input_tokens: int = 0
    cached_tokens: int = 0
    output_tokens: int = 0
    requests: int = 0


@dataclass
class DemoBill:
    costs: list[CostItem] = field(default_factory=list)
    usage: list[UsageItem] = field(default_factory=list)

    @property
    def total(self) -> Decimal:
        return sum((Decimal(item.amount) for item in self.costs), Decimal(0))


def demo_bill(path: Path, shift: timedelta, seed: int = 7) -> DemoBill:
    """The bill for the calls in `path` moved by `shift` (as `llmledger load` moved them), and the untracked spend."""
    costs: dict[tuple[date, str, str, str], Decimal] = defaultdict(Decimal)
    hours: dict[tuple[datetime, str, str, bool, str], _Hour] = defaultdict(_Hour)
    shift_ns = int(shift.total_seconds() * 1_000_000_000)
    for request in read_requests(path):
        for span in spans(request):
            attributes = {kv.key: kv.value for kv in span.attributes}
            model = _text(attributes.get(sc.GEN_AI_RESPONSE_MODEL))
            if not model:
                continue  # failed before OpenAI answered: not billed
            at = datetime.fromtimestamp((span.start_time_unix_nano + shift_ns) / 1e9, tz=UTC)
            project = _text(attributes.get(sc.OPENAI_PROJECT)) or "proj_default"
            tier = _text(attributes.get(sc.OPENAI_RESPONSE_SERVICE_TIER)) or "default"
            batch = bool(attributes.get(sc.BATCH, AnyValue()).bool_value)
            tokens = Usage(
                input_tokens=_int(attributes.get(sc.GEN_AI_USAGE_INPUT_TOKENS)),
                cached_input_tokens=_int(attributes.get(sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS)),
                output_tokens=_int(attributes.get(sc.GEN_AI_USAGE_OUTPUT_TOKENS)),
            )
            input_cost, output_cost = _priced(model, tier, batch, at, tokens)
            costs[(at.date(), model, project, "input")] += input_cost
            costs[(at.date(), model, project, "output")] += output_cost
            if not model.startswith("text-embedding"):  # embeddings have a usage endpoint of their own
                hour = hours[(at.replace(minute=0, second=0, microsecond=0), model, project, batch, tier)]
                hour.input_tokens += tokens.input_tokens
                hour.cached_tokens += tokens.cached_input_tokens
                hour.output_tokens += tokens.output_tokens
                hour.requests += 1
    bill = DemoBill(
        costs=[
            CostItem(day, amount, f"{model}, {part}", project)
            for (day, model, project, part), amount in costs.items()
            if amount
        ],
        usage=[
            UsageItem(
                hour,
                model,
                input_tokens=h.input_tokens,
                output_tokens=h.output_tokens,
                num_model_requests=h.requests,
                input_cached_tokens=h.cached_tokens,
                project_id=project,
                batch=batch,
                service_tier=tier,
            )
            for (hour, model, project, batch, tier), h in hours.items()
        ],
    )
    if costs:
        days = sorted({day for day, *_ in costs})
        _add_untracked(bill, days, random.Random(seed))
    return bill


def _priced(model: str, tier: str, batch: bool, at: datetime, tokens: Usage) -> tuple[Decimal, Decimal]:
    """(input, output) USD of one call as OpenAI bills it."""
    rates = rates_for(model, tier, batch, at)
    if rates is None:
        input_rate, output_rate = (rate / _PER_MILLION for rate in FINE_TUNED_RATES)
        return tokens.input_tokens * input_rate, tokens.output_tokens * output_rate
    input_cost = rates.cost(replace(tokens, output_tokens=0))
    return input_cost, rates.cost(tokens) - input_cost


def _add_untracked(bill: DemoBill, days: list[date], rng: random.Random) -> None:
    """Images made from a script on weekdays, and an uninstrumented internal tool over the last 30 days."""
    input_rate, output_rate = Decimal("0.40") / _PER_MILLION, Decimal("1.60") / _PER_MILLION  # gpt-4.1-mini
    for day in days:
        if day.weekday() < 5:
            images = rng.randrange(1, 6)
            bill.costs.append(CostItem(day, Decimal("0.04") * images, "gpt-image-1, image", IMAGES_PROJECT))
        if day >= days[-1] - timedelta(days=30):
            calls = rng.randrange(20, 60)
            input_tokens, output_tokens = calls * rng.randrange(600, 1400), calls * rng.randrange(80, 300)
            model = "gpt-4.1-mini-2025-04-14"
            bill.costs.append(CostItem(day, input_tokens * input_rate, f"{model}, input", UNTRACKED_PROJECT))
            bill.costs.append(CostItem(day, output_tokens * output_rate, f"{model}, output", UNTRACKED_PROJECT))
            noon = datetime(day.year, day.month, day.day, 12, tzinfo=UTC)
            bill.usage.append(
                UsageItem(
                    noon,
                    model,
                    input_tokens=input_tokens,
                    output_tokens=output_tokens,
                    num_model_requests=calls,
                    project_id=UNTRACKED_PROJECT,
                )
            )


def _text(value: AnyValue | None) -> str:
    return value.string_value if value is not None else ""


def _int(value: AnyValue | None) -> int:
    return value.int_value if value is not None else 0
