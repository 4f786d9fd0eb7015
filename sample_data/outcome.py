"""What the API did with one sample call: the tokens it used, and how its HTTP attempts went, latency included."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import datetime

from llmledger import semconv as sc
from sample_data.world import OUTAGE, STORM, STORM_MODEL, Feature, Model, Service, route


@dataclass(frozen=True)
class Usage:
    input_tokens: int  # including cached and image tokens
    cached_input_tokens: int
    output_tokens: int  # including reasoning and image tokens
    reasoning_tokens: int
    finish_reason: str
    input_image_tokens: int = 0
    output_image_tokens: int = 0
    images: int = 0
    image_size: str | None = None
    image_quality: str | None = None
    characters: int = 0  # text-to-speech input
    audio_seconds: float = 0.0  # transcribed audio
    web_search_calls: int = 0


@dataclass(frozen=True)
class Attempts:
    count: int  # HTTP attempts, SDK retries included
    seconds: float  # the whole call: failed attempts, backoff and the answer
    ttft_s: float  # from the call's start to the first chunk of the answer
    error: str | None  # error type of the last attempt, None when it was answered
    status: int | None  # HTTP status of the last answer, None when there was none (time-out)


def draw_usage(rng: random.Random, feature: Feature, model: Model) -> Usage:
    """The tokens one call used, drawn around the feature's medians."""
    sigma = 0.6 if feature.api == "embeddings" else 0.45
    input_tokens = max(1, round(feature.input_tokens * math.exp(rng.gauss(0, sigma))))
    cached = 0
    # The API caches whole 128-token blocks of a prefix of at least 1,024 tokens, when a recent call had it.
    if feature.cached_prefix and input_tokens >= 1024 and rng.random() < 0.78:
        cached = max(min(feature.cached_prefix, input_tokens) // 128 * 128, 1024)
    if feature.api == "embeddings":
        return Usage(input_tokens, 0, 0, 0, "")
    output_tokens = max(1, round(feature.output_tokens * math.exp(rng.gauss(0, 0.55))))
    finish = "tool_calls" if rng.random() < feature.tool_calls else "stop"
    if feature.max_tokens is not None and output_tokens >= feature.max_tokens:
        output_tokens, finish = feature.max_tokens, "length"
    reasoning = round(output_tokens * rng.uniform(0.45, 0.8)) if model.reasoning else 0
    searches = 1 + (rng.random() < 0.3) + (rng.random() < 0.08) if feature.web_search else 0
    return Usage(input_tokens, cached, output_tokens, reasoning, finish, web_search_calls=searches)


def draw_attempts(
    rng: random.Random, feature: Feature, service: Service, model: Model, at: datetime, usage: Usage
) -> Attempts:
    """How the HTTP attempts went, SDK retries and backoff included: rate limits in the storm, 5xx in the
    outage, time-outs when an answer is slower than the client's timeout, rare errors otherwise."""
    if rng.random() < (0.004 if usage.input_tokens > 20_000 else 0.0008):
        return Attempts(1, rng.uniform(0.1, 0.4), 0.0, "BadRequestError", 400)
    # The storm is the OpenAI organisation's limit, and the outage OpenAI's: other providers' calls go on.
    on_openai = route(feature).provider == sc.PROVIDER_OPENAI
    storm = STORM.severity(at) if feature.model == STORM_MODEL and on_openai else 0.0
    outage = OUTAGE.severity(at) if on_openai else 0.0
    p_429 = 0.002 + 0.7 * storm
    p_5xx = 0.0015 + 0.88 * outage
    hangs = rng.random() < 0.001  # a request the API never answers, however often it is retried
    elapsed = 0.0
    failure: tuple[str, int | None] = ("", None)
    for attempt in range(1, service.max_retries + 2):
        draw = rng.random()
        first, total = _answer_seconds(rng, feature, model, outage, usage)
        # A stream times out only while waiting for a chunk; a plain call while waiting for the whole answer.
        slow = (first if feature.stream else total) > service.timeout_s
        if draw < p_429:
            failure = ("RateLimitError", 429)
            elapsed += rng.uniform(0.05, 0.3)
            backoff = rng.uniform(1.0, 20.0) if storm else rng.uniform(0.5, 2.0)  # retry-after-ms
        elif draw < p_429 + p_5xx:
            failure = ("InternalServerError", rng.choice((500, 500, 500, 502, 503)))
            elapsed += rng.uniform(0.2, 25.0) if outage else rng.uniform(0.2, 3.0)
            backoff = min(0.5 * 2 ** (attempt - 1), 8.0) * rng.uniform(0.75, 1.0)
        elif slow or hangs:
            failure = ("APITimeoutError", None)
            elapsed += service.timeout_s
            backoff = min(0.5 * 2 ** (attempt - 1), 8.0) * rng.uniform(0.75, 1.0)
        else:
            return Attempts(attempt, elapsed + total, elapsed + first, None, 200)
        if attempt <= service.max_retries:
            elapsed += backoff
    return Attempts(service.max_retries + 1, elapsed, 0.0, failure[0], failure[1])


def _answer_seconds(
    rng: random.Random, feature: Feature, model: Model, outage: float, usage: Usage
) -> tuple[float, float]:
    """Time to first token and total time of one answered attempt."""
    slow = (1 + 2.5 * outage) * (rng.uniform(2, 6) if rng.random() < 0.015 else 1.0)
    if feature.api in _WHOLE_ANSWER_APIS:
        total = _whole_answer_seconds(feature, model, usage) * math.exp(rng.gauss(0, 0.3)) * slow
        return total, total
    first = (model.ttft_s + usage.input_tokens / 25_000) * math.exp(rng.gauss(0, 0.3))
    first += usage.reasoning_tokens / (model.tokens_per_s * 1.3) * math.exp(rng.gauss(0, 0.2))
    rest = (usage.output_tokens - usage.reasoning_tokens) / model.tokens_per_s * math.exp(rng.gauss(0, 0.2))
    return first * slow, (first + rest) * slow


_WHOLE_ANSWER_APIS = frozenset({"embeddings", "moderations", "images", "audio_speech", "audio_transcriptions"})


def _whole_answer_seconds(feature: Feature, model: Model, usage: Usage) -> float:
    """Median time to an answer the API sends whole (an image, a speech file, a transcript, vectors)."""
    if feature.api == "images":
        return model.ttft_s * usage.images
    if feature.api == "audio_speech":
        return model.ttft_s + usage.characters / 900
    if feature.api == "audio_transcriptions":
        return model.ttft_s + usage.audio_seconds / 25
    return model.ttft_s + usage.input_tokens / 60_000
