"""The demo's OpenAI bill: what OpenAI's Costs and Usage APIs would report for the sample traffic, plus spend that
no instrumented call accounts for, served by the local fake of those APIs so the Reconciliation page has data.

OpenAI meters the calls the sample apps made through OpenAI (Azure OpenAI and OpenRouter bill their own calls): each
priced with genai-prices' list rates (the fine-tuned model, which genai-prices cannot price, at OpenAI's fine-tuned
inference rates), costs per UTC day, project and line item, completions usage per hour. Line items are named as
OpenAI's Costs API names them (collector/reconcile/line_items.py): "<model>, input" and "<model>, output" for
tokens (text, embeddings, gpt-image-1), the bare model for what is billed per image, character or audio second
("dall-e-3", "tts-1", "whisper-1"), "web search tool calls" for the Responses API's searches; moderations are free.
On top of that, spend the wrapper never saw: images generated from a script, an internal tool calling gpt-4.1-mini
with a key of its own, and charges billed outside calls (vector store storage, a fine-tuning job).
"""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from llmledger import semconv as sc
from llmledger.pricing import Usage, rates_for
from llmledger.testing.fake_openai_admin import CostItem, UsageItem
from sample_data.otlp_file import attributes, read_requests, spans

_PER_MILLION = Decimal(1_000_000)
# OpenAI's fine-tuned gpt-4.1-mini inference, USD per million tokens (input, output).
FINE_TUNED_RATES = (Decimal("0.80"), Decimal("3.20"))
UNTRACKED_PROJECT = "proj_Intl4Tq8Lm0Xc3Vb7NsD"  # an internal tool's project: its key never went through the wrapper
IMAGES_PROJECT = "proj_Mkt9Rb2Yw6Kd1Pz5HfQa"
SUPPORT_PROJECT = "proj_Sup8kQ2mXv41Lw0cTn7R"  # its knowledge base's vector store, its fine-tuned triage model
# Usage fields of the Responses API's built-in tools → OpenAI's line item.
TOOL_LINE_ITEMS = {
    "web_search_calls": "web search tool calls",
    "file_search_calls": "file search tool calls",
    "code_interpreter_sessions": "code interpreter sessions",
}
_COMPLETIONS_APIS = frozenset({"chat_completions", "responses"})  # the completions usage endpoint's


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
    costs: dict[tuple[date, str, str], Decimal] = defaultdict(Decimal)
    hours: dict[tuple[datetime, str, str, bool, str], _Hour] = defaultdict(_Hour)
    shift_ns = int(shift.total_seconds() * 1_000_000_000)
    for request in read_requests(path):
        for span in spans(request):
            attrs = attributes(span)
            unit = attrs.get(sc.BILLING_UNIT)
            if unit is None or attrs.get(sc.GEN_AI_PROVIDER_NAME) != sc.PROVIDER_OPENAI:
                continue  # failed before OpenAI answered, or billed by Azure or OpenRouter
            model = attrs.get(sc.GEN_AI_RESPONSE_MODEL) or attrs[sc.GEN_AI_REQUEST_MODEL]
            at = datetime.fromtimestamp((span.start_time_unix_nano + shift_ns) / 1e9, tz=UTC)
            project = attrs.get(sc.OPENAI_PROJECT) or "proj_default"
            tier = attrs.get(sc.OPENAI_RESPONSE_SERVICE_TIER) or "default"
            batch = bool(attrs.get(sc.BATCH))
            usage = Usage.from_attributes(attrs)
            for line_item, amount in line_items(model, tier, batch, at, usage, unit).items():
                costs[(at.date(), line_item, project)] += amount
            if attrs.get(sc.OPENAI_API_TYPE) in _COMPLETIONS_APIS:
                hour = hours[(at.replace(minute=0, second=0, microsecond=0), model, project, batch, tier)]
                hour.input_tokens += usage.input_tokens
                hour.cached_tokens += usage.cached_input_tokens
                hour.output_tokens += usage.output_tokens
                hour.requests += 1
    bill = DemoBill(
        costs=[
            CostItem(day, amount, line_item, project) for (day, line_item, project), amount in costs.items() if amount
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


def line_items(model: str, tier: str, batch: bool, at: datetime, usage: Usage, unit: str) -> dict[str, Decimal]:
    """One call's USD by OpenAI's line item."""
    if unit == "requests":
        return {}  # moderations are free
    rates = rates_for(model, tier, batch, at)
    if rates is None:
        input_rate, output_rate = (rate / _PER_MILLION for rate in FINE_TUNED_RATES)
        return {
            f"{model}, input": usage.input_tokens * input_rate,
            f"{model}, output": usage.output_tokens * output_rate,
        }
    if unit != "tokens":
        return {model: rates.cost(usage)}  # per image, character or audio second
    tokens = replace(usage, **dict.fromkeys(TOOL_LINE_ITEMS, 0))
    input_cost = rates.cost(replace(tokens, output_tokens=0, output_audio_tokens=0, output_image_tokens=0))
    amounts = {f"{model}, input": input_cost, f"{model}, output": rates.cost(tokens) - input_cost}
    for name, line_item in TOOL_LINE_ITEMS.items():
        if getattr(usage, name):
            amounts[line_item] = rates.cost(Usage(**{name: getattr(usage, name)}))
    return amounts


def _add_untracked(bill: DemoBill, days: list[date], rng: random.Random) -> None:
    """Images made from a script on weekdays, an uninstrumented internal tool over the last 30 days, and charges
    billed outside calls: the support knowledge base's vector store every day, one fine-tuning job."""
    input_rate, output_rate = Decimal("0.40") / _PER_MILLION, Decimal("1.60") / _PER_MILLION  # gpt-4.1-mini
    stored_gb = Decimal("2.4")
    for day in days:
        if day.weekday() < 5:
            images = rng.randrange(1, 6)
            bill.costs.append(CostItem(day, Decimal("0.02") * images, "dall-e-2", IMAGES_PROJECT))
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
        stored_gb += Decimal("0.007")  # $0.10 per GB-day beyond the first, free GB
        bill.costs.append(CostItem(day, (stored_gb - 1) * Decimal("0.10"), "vector store storage", SUPPORT_PROJECT))
    # Retraining the triage model: 1.8M training tokens x 3 epochs at $5 per million.
    job_day = days[len(days) * 2 // 3]
    bill.costs.append(CostItem(job_day, Decimal("27.00"), "fine-tuning training", SUPPORT_PROJECT))
