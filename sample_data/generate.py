"""Seeded generator of the demo's sample data: realistic OpenAI traffic as the spans our wrapper emits.

    python sample_data/generate.py --out sample_data/demo-90d.otlp.gz [--seed 2026] [--calls-per-day N] [--days 90]

The same seed and options give the same file byte for byte: every id and every number comes from one
`random.Random(seed)`, and the gzip header carries no time stamp. The window always ends at 2026-01-01T00:00Z;
`llmledger load` shifts it to end now. The file format is described in `sample_data/__init__.py`.

The traffic model is the tables below: apps (`SERVICES`), what they call the API for (`FEATURES`), the models'
speeds and rate limits (`MODELS`), and three incidents: a rate-limit storm on gpt-4o-mini (`STORM`), an OpenAI
outage answering 5xx (`OUTAGE`) and a runaway feature re-summarising every document in a loop (`SPIKE`).
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import itertools
import math
import random
import string
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import InstrumentationScope
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status

from llmledger import pricing
from llmledger import semconv as sc
from llmledger.testing.otlp_values import key_values
from sample_data import otlp_file
from sample_data.otlp_file import Written

END = datetime(2026, 1, 1, tzinfo=UTC)
DEFAULT_SEED = 2026
DEFAULT_DAYS = 90
DEFAULT_CALLS_PER_DAY = 240
SPANS_PER_MESSAGE = 500
_NS = 1_000_000_000
_DEMO_SALT = b"llmledger-demo"  # end users are hashed as the wrapper does, with a fixed salt
_SCOPE = InstrumentationScope(name="llmledger", version="0.1.0")
_BASE62 = string.digits + string.ascii_letters


# --- the tables ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Model:
    snapshot: str  # the dated name responses report
    ttft_s: float  # median time to first token for a short prompt
    tokens_per_s: float  # output speed
    reasoning: bool = False
    limit_requests: int = 5_000  # x-ratelimit-limit-* of a mid-tier organisation
    limit_tokens: int = 4_000_000


FINE_TUNED = "ft:gpt-4.1-mini-2025-04-14:acme:triage:B7x9kQ2d"  # genai-prices can't price it: shown as unpriced
MODELS: dict[str, Model] = {
    "gpt-4o-mini": Model("gpt-4o-mini-2024-07-18", 0.38, 85),
    "gpt-4o": Model("gpt-4o-2024-08-06", 0.55, 65, limit_tokens=800_000),
    "gpt-4.1": Model("gpt-4.1-2025-04-14", 0.6, 60, limit_tokens=800_000),
    "gpt-4.1-mini": Model("gpt-4.1-mini-2025-04-14", 0.42, 80),
    "gpt-5-mini": Model("gpt-5-mini-2025-08-07", 0.5, 110, reasoning=True),
    "o3-mini": Model("o3-mini-2025-01-31", 0.5, 150, reasoning=True),
    "text-embedding-3-small": Model("text-embedding-3-small", 0.08, 0, limit_tokens=5_000_000),
    FINE_TUNED: Model(FINE_TUNED, 0.3, 95, limit_requests=500, limit_tokens=200_000),
}


@dataclass(frozen=True)
class Service:
    name: str
    versions: tuple[tuple[date, str], ...]  # the production version deployed from that day on
    staging_version: str
    staging_share: float  # fraction of the app's calls made from staging
    project: str
    key_kind: str
    timeout_s: float
    max_retries: int
    weekend: float  # weekend volume relative to a weekday
    peak_hour: float  # UTC
    peak_width_h: float
    night_floor: float  # volume at the quietest hour relative to the peak


SERVICES: dict[str, Service] = {
    service.name: service
    for service in (
        Service(
            name="support-bot",
            versions=((date(2025, 1, 1), "2.12.4"), (date(2025, 11, 4), "2.13.0"), (date(2025, 12, 9), "2.14.1")),
            staging_version="2.15.0-rc.2",
            staging_share=0.04,
            project="proj_Sup8kQ2mXv41Lw0cTn7R",
            key_kind="project",
            timeout_s=30.0,
            max_retries=3,
            weekend=0.7,
            peak_hour=16.0,
            peak_width_h=5.0,
            night_floor=0.22,
        ),
        Service(
            name="search-api",
            versions=((date(2025, 1, 1), "1.8.0"), (date(2025, 11, 20), "1.9.2")),
            staging_version="1.10.0-rc.1",
            staging_share=0.05,
            project="proj_Srch3Fh9Qa0ZpL2dYe6K",
            key_kind="project",
            timeout_s=10.0,
            max_retries=2,
            weekend=0.6,
            peak_hour=15.0,
            peak_width_h=5.0,
            night_floor=0.3,
        ),
        Service(
            name="doc-summarizer",
            versions=((date(2025, 1, 1), "0.9.3"), (date(2025, 12, 1), "0.10.0")),
            staging_version="0.11.0-dev",
            staging_share=0.03,
            project="proj_Docs7Tn2Wb5Rk8Jm1HcX",
            key_kind="user",  # a personal key: the readiness checklist flags it
            timeout_s=600.0,  # the SDK's default: far too long for an interactive call
            max_retries=2,
            weekend=0.3,
            peak_hour=13.0,
            peak_width_h=3.5,
            night_floor=0.08,
        ),
        Service(
            name="sales-assistant",
            versions=((date(2025, 1, 1), "3.2.0"), (date(2025, 11, 17), "3.3.1"), (date(2025, 12, 15), "3.4.0")),
            staging_version="3.5.0-beta",
            staging_share=0.06,
            project="proj_Sale2Vd6Np9Gx3Qw5BzM",
            key_kind="service_account",
            timeout_s=60.0,
            max_retries=5,
            weekend=0.12,
            peak_hour=15.0,
            peak_width_h=3.0,
            night_floor=0.05,
        ),
    )
}


@dataclass(frozen=True)
class Feature:
    service: str
    team: str
    name: str
    model: str  # a key of MODELS
    api: str  # openai.api.type: chat_completions | responses | embeddings
    share: float  # of the day's calls (normalised)
    input_tokens: int  # median, including any cached prefix
    output_tokens: int = 0  # median, including reasoning
    cached_prefix: int = 0  # tokens of a stable prompt prefix the API can cache
    stream: bool = False
    max_tokens: int | None = None
    temperature: float | None = None
    users: str | None = None  # "customers" or "reps": whose requests these are
    user_param: bool = False  # the request itself names the user (safety_identifier)
    tier: str | None = None  # service_tier asked for
    pinned: bool = False  # asks for the dated snapshot, not the alias
    tool_calls: float = 0.0  # fraction of answers that end in tool calls
    peak_hour: float | None = None  # a batch job's own schedule


FEATURES: tuple[Feature, ...] = (
    Feature("support-bot", "support", "answers", "gpt-4o-mini", "chat_completions", 0.28, 2600, 230,
            cached_prefix=1536, stream=True, max_tokens=800, temperature=0.3, users="customers", user_param=True,
            pinned=True, tool_calls=0.06),
    Feature("support-bot", "support", "escalation-summary", "gpt-4.1", "chat_completions", 0.05, 4200, 380,
            cached_prefix=1024, max_tokens=1000, temperature=0.2, users="customers", user_param=True, tier="priority"),
    Feature("support-bot", "support", "ticket-triage", FINE_TUNED, "chat_completions", 0.015, 650, 12,
            max_tokens=16, temperature=0.0, users="customers", user_param=True),
    Feature("search-api", "search", "query-embed", "text-embedding-3-small", "embeddings", 0.18, 28,
            users="customers"),
    Feature("search-api", "search", "rerank", "gpt-4.1-mini", "chat_completions", 0.1, 3100, 70,
            max_tokens=200, temperature=0.0, users="customers"),
    Feature("search-api", "search", "answer", "gpt-4o", "chat_completions", 0.08, 3800, 300,
            cached_prefix=1280, stream=True, max_tokens=1024, temperature=0.5, users="customers"),
    Feature("doc-summarizer", "knowledge", "summarize", "gpt-4.1", "chat_completions", 0.07, 12000, 650,
            cached_prefix=2048, temperature=0.2),
    Feature("doc-summarizer", "knowledge", "extract-fields", "o3-mini", "chat_completions", 0.05, 5000, 1100),
    Feature("doc-summarizer", "data-platform", "index-embed", "text-embedding-3-small", "embeddings", 0.05, 1400,
            peak_hour=2.0),
    Feature("doc-summarizer", "data-platform", "reindex-summaries", "gpt-4.1", "chat_completions", 0.004, 42000,
            700, temperature=0.2, peak_hour=3.0),
    Feature("sales-assistant", "sales", "email-draft", "gpt-5-mini", "responses", 0.06, 2300, 1500,
            cached_prefix=1152, stream=True, max_tokens=4000, users="reps", user_param=True, tool_calls=0.1),
    Feature("sales-assistant", "sales", "lead-scoring", "gpt-5-mini", "responses", 0.03, 2800, 900,
            max_tokens=2000, users="reps", user_param=True, tier="flex"),
    Feature("sales-assistant", "sales", "call-notes", "gpt-4o-mini", "chat_completions", 0.04, 6000, 480,
            stream=True, max_tokens=1500, temperature=0.4, users="reps", user_param=True),
)  # fmt: skip

USER_POOLS = {"customers": 320, "reps": 36}
HOLIDAYS = {
    date(2025, 11, 27): 0.55,
    date(2025, 11, 28): 0.75,
    date(2025, 12, 24): 0.6,
    date(2025, 12, 25): 0.4,
    date(2025, 12, 26): 0.65,
    date(2025, 12, 31): 0.6,
}


@dataclass(frozen=True)
class Incident:
    start: datetime
    end: datetime
    ramp: timedelta  # how long it takes to build up and to die down

    def severity(self, at: datetime) -> float:
        """0 outside, rising to 1 over `ramp`, falling back to 0 over the last `ramp`."""
        if not self.start <= at < self.end:
            return 0.0
        return min(1.0, (at - self.start) / self.ramp, (self.end - at) / self.ramp)


# A post-Christmas returns surge on support-bot exhausts the organisation's gpt-4o-mini request limit.
STORM = Incident(
    datetime(2025, 12, 29, 14, 20, tzinfo=UTC), datetime(2025, 12, 29, 17, 50, tzinfo=UTC), timedelta(minutes=40)
)
STORM_MODEL = "gpt-4o-mini"
STORM_FEATURE = "answers"
STORM_EXTRA_CALLS = 0.4  # extra storm calls, in days of traffic
# OpenAI answers most requests with 5xx for about an hour.
OUTAGE = Incident(
    datetime(2025, 12, 18, 15, 5, tzinfo=UTC), datetime(2025, 12, 18, 16, 20, tzinfo=UTC), timedelta(minutes=10)
)
# A bad deploy re-summarises every document on each edit until someone notices, a day and a half later.
SPIKE = Incident(
    datetime(2025, 11, 12, 22, 0, tzinfo=UTC), datetime(2025, 11, 14, 6, 0, tzinfo=UTC), timedelta(hours=1)
)
SPIKE_FEATURE = "reindex-summaries"
SPIKE_EXTRA_CALLS = 4.0  # in days of traffic


# --- one call ------------------------------------------------------------------------------------------------


@dataclass
class Call:
    """One API call as the wrapper would have recorded it."""

    start_ns: int
    end_ns: int
    resource: tuple[str, str, str]  # service, environment, version
    attrs: dict[str, Any]
    error: str | None
    trace_id: bytes
    span_id: bytes


@dataclass(frozen=True)
class _Usage:
    input_tokens: int  # including cached
    cached_input_tokens: int
    output_tokens: int  # including reasoning
    reasoning_tokens: int
    finish_reason: str


@dataclass(frozen=True)
class _Attempts:
    count: int  # HTTP attempts, SDK retries included
    seconds: float  # the whole call: failed attempts, backoff and the answer
    ttft_s: float  # from the call's start to the first chunk of the answer
    error: str | None  # error type of the last attempt, None when it was answered
    status: int | None  # HTTP status of the last answer, None when there was none (time-out)


class TrafficModel:
    """Draws calls from the tables with one seeded `random.Random`."""

    def __init__(self, seed: int, calls_per_day: float, days: int) -> None:
        self.rng = random.Random(seed)
        self.calls_per_day = calls_per_day
        self.start = END - timedelta(days=days)
        self.days = days
        total_share = sum(feature.share for feature in FEATURES)
        self.shares = {feature.name: feature.share / total_share for feature in FEATURES}
        self.features = {feature.name: feature for feature in FEATURES}
        self.users = {pool: _user_ids(pool, size) for pool, size in USER_POOLS.items()}
        self.user_weights = {pool: _zipf_cum_weights(size) for pool, size in USER_POOLS.items()}

    # --- when calls happen -------------------------------------------------------------------------------------

    def schedule(self) -> list[tuple[int, Feature]]:
        """Start times (ns) and features of every call in the window, in time order."""
        planned: list[tuple[int, Feature]] = []
        for day in range(self.days):
            midnight = self.start + timedelta(days=day)
            for feature in FEATURES:
                hours = _hour_weights(feature)
                for _ in range(_poisson(self.rng, self._expected(feature, day, midnight))):
                    hour = self.rng.choices(range(24), cum_weights=hours)[0]
                    planned.append((_ns(midnight + timedelta(hours=hour)) + self.rng.randrange(3600 * _NS), feature))
        planned += self._burst(STORM, self.features[STORM_FEATURE], STORM_EXTRA_CALLS)
        planned += self._burst(SPIKE, self.features[SPIKE_FEATURE], SPIKE_EXTRA_CALLS)
        planned.sort(key=lambda item: item[0])
        return planned

    def _expected(self, feature: Feature, day: int, midnight: datetime) -> float:
        service = SERVICES[feature.service]
        weekly = service.weekend if midnight.weekday() >= 5 else 1.0
        mean_weekly = (5 + 2 * service.weekend) / 7
        growth = 0.85 + 0.3 * day / max(self.days - 1, 1)
        holiday = HOLIDAYS.get(midnight.date(), 1.0)
        return self.calls_per_day * self.shares[feature.name] * growth * holiday * weekly / mean_weekly

    def _burst(self, incident: Incident, feature: Feature, days_of_traffic: float) -> list[tuple[int, Feature]]:
        if incident.end <= self.start:
            return []
        first, last = _ns(max(incident.start, self.start)), _ns(incident.end)
        return [(self.rng.randrange(first, last), feature) for _ in range(round(self.calls_per_day * days_of_traffic))]

    # --- what each call looked like ------------------------------------------------------------------------------

    def call(self, start_ns: int, feature: Feature) -> Call:
        """The call made at `start_ns` for `feature`, with every attribute the wrapper would have set."""
        rng = self.rng
        service = SERVICES[feature.service]
        model = MODELS[feature.model]
        at = datetime.fromtimestamp(start_ns / _NS, tz=UTC)
        staging = rng.random() < service.staging_share
        environment, version = (
            ("staging", service.staging_version) if staging else ("production", _version(service, at))
        )
        attrs = self._request_attributes(feature, service, model)
        usage = self._usage(feature, model)
        attempts = self._attempts(feature, service, model, at, usage)
        if attempts.error is None:
            if feature.stream:
                attrs[sc.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK] = round(attempts.ttft_s, 6)
            self._response_attributes(attrs, feature, model, usage)
        attrs[sc.ATTEMPTS] = attempts.count
        if attempts.status is not None:
            attrs[sc.HTTP_RESPONSE_STATUS_CODE] = attempts.status
            attrs[sc.REQUEST_ID] = "req_" + rng.randbytes(16).hex()
        if attempts.error is not None:
            attrs[sc.ERROR_TYPE] = attempts.error
        if attempts.status in (200, 429):
            self._ratelimit_attributes(attrs, feature, model, at, limited=attempts.status == 429)
        if attempts.error is None:
            _add_cost(attrs, model, usage)
        return Call(
            start_ns=start_ns,
            end_ns=start_ns + max(int(attempts.seconds * _NS), 1_000_000),
            resource=(service.name, environment, version),
            attrs=attrs,
            error=attempts.error,
            trace_id=_nonzero(rng, 16),
            span_id=_nonzero(rng, 8),
        )

    def _request_attributes(self, feature: Feature, service: Service, model: Model) -> dict[str, Any]:
        operation = "embeddings" if feature.api == "embeddings" else "chat"
        attrs: dict[str, Any] = {
            sc.GEN_AI_OPERATION_NAME: operation,
            sc.GEN_AI_PROVIDER_NAME: sc.PROVIDER_OPENAI,
            sc.OPENAI_API_TYPE: feature.api,
            sc.GEN_AI_REQUEST_MODEL: model.snapshot if feature.pinned else feature.model,
        }
        if feature.max_tokens is not None:
            attrs[sc.GEN_AI_REQUEST_MAX_TOKENS] = feature.max_tokens
        if feature.temperature is not None:
            attrs[sc.GEN_AI_REQUEST_TEMPERATURE] = feature.temperature
        if operation != "embeddings":
            attrs[sc.GEN_AI_REQUEST_STREAM] = feature.stream
        if feature.tier is not None:
            attrs[sc.OPENAI_REQUEST_SERVICE_TIER] = feature.tier
        attrs[sc.REQUEST_USER_SET] = feature.user_param
        attrs[sc.SERVER_ADDRESS] = "api.openai.com"
        attrs[sc.SERVER_PORT] = 443
        attrs[sc.OPENAI_PROJECT] = service.project
        attrs[sc.CLIENT_KEY_KIND] = service.key_kind
        attrs[sc.CLIENT_TIMEOUT_S] = service.timeout_s
        attrs[sc.CLIENT_MAX_RETRIES] = service.max_retries
        if feature.users is not None:
            attrs[sc.END_USER] = self.rng.choices(
                self.users[feature.users], cum_weights=self.user_weights[feature.users]
            )[0]
        attrs[sc.TEAM] = feature.team
        attrs[sc.FEATURE] = feature.name
        attrs[sc.CONTENT_CAPTURED] = False
        attrs[sc.CONTENT_REDACTED] = False
        return attrs

    def _usage(self, feature: Feature, model: Model) -> _Usage:
        rng = self.rng
        sigma = 0.6 if feature.api == "embeddings" else 0.45
        input_tokens = max(1, round(feature.input_tokens * math.exp(rng.gauss(0, sigma))))
        cached = 0
        # The API caches whole 128-token blocks of a prefix of at least 1,024 tokens, when a recent call had it.
        if feature.cached_prefix and input_tokens >= 1024 and rng.random() < 0.78:
            cached = max(min(feature.cached_prefix, input_tokens) // 128 * 128, 1024)
        if feature.api == "embeddings":
            return _Usage(input_tokens, 0, 0, 0, "")
        output_tokens = max(1, round(feature.output_tokens * math.exp(rng.gauss(0, 0.55))))
        finish = "tool_calls" if rng.random() < feature.tool_calls else "stop"
        if feature.max_tokens is not None and output_tokens >= feature.max_tokens:
            output_tokens, finish = feature.max_tokens, "length"
        reasoning = round(output_tokens * rng.uniform(0.45, 0.8)) if model.reasoning else 0
        return _Usage(input_tokens, cached, output_tokens, reasoning, finish)

    def _attempts(self, feature: Feature, service: Service, model: Model, at: datetime, usage: _Usage) -> _Attempts:
        """How the HTTP attempts went, SDK retries and backoff included: rate limits in the storm, 5xx in the
        outage, time-outs when an answer is slower than the client's timeout, rare errors otherwise."""
        rng = self.rng
        if rng.random() < (0.004 if usage.input_tokens > 20_000 else 0.0008):
            return _Attempts(1, rng.uniform(0.1, 0.4), 0.0, "BadRequestError", 400)
        storm = STORM.severity(at) if feature.model == STORM_MODEL else 0.0
        outage = OUTAGE.severity(at)
        p_429 = 0.002 + 0.7 * storm
        p_5xx = 0.0015 + 0.88 * outage
        hangs = rng.random() < 0.001  # a request the API never answers, however often it is retried
        elapsed = 0.0
        failure: tuple[str, int | None] = ("", None)
        for attempt in range(1, service.max_retries + 2):
            draw = rng.random()
            first, total = self._answer_seconds(feature, model, at, usage)
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
                return _Attempts(attempt, elapsed + total, elapsed + first, None, 200)
            if attempt <= service.max_retries:
                elapsed += backoff
        return _Attempts(service.max_retries + 1, elapsed, 0.0, failure[0], failure[1])

    def _answer_seconds(self, feature: Feature, model: Model, at: datetime, usage: _Usage) -> tuple[float, float]:
        """Time to first token and total time of one answered attempt."""
        rng = self.rng
        slow = (1 + 2.5 * OUTAGE.severity(at)) * (rng.uniform(2, 6) if rng.random() < 0.015 else 1.0)
        if feature.api == "embeddings":
            total = (model.ttft_s + usage.input_tokens / 60_000) * math.exp(rng.gauss(0, 0.3)) * slow
            return total, total
        first = (model.ttft_s + usage.input_tokens / 25_000) * math.exp(rng.gauss(0, 0.3))
        first += usage.reasoning_tokens / (model.tokens_per_s * 1.3) * math.exp(rng.gauss(0, 0.2))
        rest = (usage.output_tokens - usage.reasoning_tokens) / model.tokens_per_s * math.exp(rng.gauss(0, 0.2))
        return first * slow, (first + rest) * slow

    def _response_attributes(self, attrs: dict[str, Any], feature: Feature, model: Model, usage: _Usage) -> None:
        attrs[sc.GEN_AI_RESPONSE_MODEL] = model.snapshot
        if feature.api == "chat_completions":
            attrs[sc.GEN_AI_RESPONSE_ID] = "chatcmpl-" + "".join(self.rng.choices(_BASE62, k=29))
        elif feature.api == "responses":
            attrs[sc.GEN_AI_RESPONSE_ID] = "resp_" + self.rng.randbytes(24).hex()
        if feature.api != "embeddings":
            attrs[sc.OPENAI_RESPONSE_SERVICE_TIER] = feature.tier or "default"
            attrs[sc.GEN_AI_RESPONSE_FINISH_REASONS] = [usage.finish_reason]
        attrs[sc.GEN_AI_USAGE_INPUT_TOKENS] = usage.input_tokens
        if feature.api != "embeddings":
            # Chat and Responses usage always carries the detail blocks (zeros included); embeddings' has none.
            attrs[sc.GEN_AI_USAGE_OUTPUT_TOKENS] = usage.output_tokens
            attrs[sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] = usage.cached_input_tokens
            attrs[sc.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS] = usage.reasoning_tokens

    def _ratelimit_attributes(
        self, attrs: dict[str, Any], feature: Feature, model: Model, at: datetime, limited: bool
    ) -> None:
        """x-ratelimit-* headers: the organisation's use follows the day, and runs out in the storm."""
        rng = self.rng
        hours = _hour_weights(feature)
        load = (hours[at.hour] - (hours[at.hour - 1] if at.hour else 0.0)) / (hours[-1] / 24)
        used = min(0.02 + 0.12 * load * rng.uniform(0.7, 1.3), 0.6)
        if feature.model == STORM_MODEL:
            storm = STORM.severity(at)
            used = max(used, storm * rng.uniform(0.93, 1.0))
        remaining_requests = 0 if limited else max(0, round(model.limit_requests * (1 - used)) - rng.randrange(3))
        remaining_tokens = max(0, round(model.limit_tokens * (1 - used * rng.uniform(0.6, 0.9))))
        attrs[sc.RATELIMIT_LIMIT_REQUESTS] = model.limit_requests
        attrs[sc.RATELIMIT_REMAINING_REQUESTS] = remaining_requests
        attrs[sc.RATELIMIT_LIMIT_TOKENS] = model.limit_tokens
        attrs[sc.RATELIMIT_REMAINING_TOKENS] = remaining_tokens


def _add_cost(attrs: dict[str, Any], model: Model, usage: _Usage) -> None:
    tokens = pricing.Usage(usage.input_tokens, usage.cached_input_tokens, output_tokens=usage.output_tokens)
    attrs.update(pricing.cost_attributes(tokens, model.snapshot, attrs.get(sc.OPENAI_RESPONSE_SERVICE_TIER)))


# --- small helpers -------------------------------------------------------------------------------------------


def _ns(at: datetime) -> int:
    return (at - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1) * 1000


def _nonzero(rng: random.Random, size: int) -> bytes:
    while True:
        value = rng.randbytes(size)
        if any(value):
            return value


def _poisson(rng: random.Random, mean: float) -> int:
    if mean > 40:
        return max(0, round(rng.gauss(mean, math.sqrt(mean))))
    limit, count, product = math.exp(-mean), 0, rng.random()
    while product > limit:
        count += 1
        product *= rng.random()
    return count


_HOUR_WEIGHTS: dict[str, list[float]] = {}


def _hour_weights(feature: Feature) -> list[float]:
    """Cumulative weights of the 24 UTC hours for the feature's calls."""
    cached = _HOUR_WEIGHTS.get(feature.name)
    if cached is None:
        service = SERVICES[feature.service]
        peak = service.peak_hour if feature.peak_hour is None else feature.peak_hour
        width = service.peak_width_h if feature.peak_hour is None else 1.5
        weights = []
        for hour in range(24):
            distance = min(abs(hour + 0.5 - peak), 24 - abs(hour + 0.5 - peak))
            weights.append(service.night_floor + math.exp(-(distance**2) / (2 * width**2)))
        cached = _HOUR_WEIGHTS[feature.name] = list(itertools.accumulate(weights))
    return cached


def _version(service: Service, at: datetime) -> str:
    current = service.versions[0][1]
    for since, version in service.versions:
        if at.date() >= since:
            current = version
    return current


def _zipf_cum_weights(size: int) -> list[float]:
    """A few users make most of the calls, as in any product."""
    return list(itertools.accumulate(1 / rank**1.1 for rank in range(1, size + 1)))


def _user_ids(pool: str, size: int) -> list[str]:
    """The hashed ids the wrapper would record for the pool's users (HMAC-SHA256 with a fixed demo salt)."""
    return [
        hmac.new(_DEMO_SALT, f"{pool}-{index:04d}".encode(), hashlib.sha256).hexdigest()[:32] for index in range(size)
    ]


# --- OTLP ------------------------------------------------------------------------------------------------------


def _span(call: Call) -> Span:
    status = Status(code=Status.STATUS_CODE_ERROR, message=call.error) if call.error else Status()
    return Span(
        trace_id=call.trace_id,
        span_id=call.span_id,
        name=f"{call.attrs[sc.GEN_AI_OPERATION_NAME]} {call.attrs[sc.GEN_AI_REQUEST_MODEL]}",
        kind=Span.SPAN_KIND_CLIENT,
        start_time_unix_nano=call.start_ns,
        end_time_unix_nano=call.end_ns,
        attributes=key_values(call.attrs),
        status=status,
    )


def export_request(calls: Sequence[Call]) -> ExportTraceServiceRequest:
    """One OTLP export request, one `ResourceSpans` per (service, environment, version), as an SDK batches."""
    by_resource: dict[tuple[str, str, str], list[Span]] = {}
    for call in calls:
        by_resource.setdefault(call.resource, []).append(_span(call))
    request = ExportTraceServiceRequest()
    for (service, environment, version), spans in by_resource.items():
        resource = Resource(
            attributes=key_values(
                {
                    sc.SERVICE_NAME: service,
                    sc.DEPLOYMENT_ENVIRONMENT_NAME: environment,
                    sc.SERVICE_VERSION: version,
                    sc.TELEMETRY_SDK_NAME: "opentelemetry",
                }
            )
        )
        request.resource_spans.append(
            ResourceSpans(resource=resource, scope_spans=[ScopeSpans(scope=_SCOPE, spans=spans)])
        )
    return request


def generate_requests(
    seed: int = DEFAULT_SEED, calls_per_day: float = DEFAULT_CALLS_PER_DAY, days: int = DEFAULT_DAYS
) -> Iterator[ExportTraceServiceRequest]:
    """The window's calls as OTLP export requests of `SPANS_PER_MESSAGE` spans, in time order."""
    model = TrafficModel(seed, calls_per_day, days)
    batch: list[Call] = []
    for start_ns, feature in model.schedule():
        batch.append(model.call(start_ns, feature))
        if len(batch) == SPANS_PER_MESSAGE:
            yield export_request(batch)
            batch = []
    if batch:
        yield export_request(batch)


def generate(
    out: Path, *, seed: int = DEFAULT_SEED, calls_per_day: float = DEFAULT_CALLS_PER_DAY, days: int = DEFAULT_DAYS
) -> Written:
    """Generate `days` days of traffic ending 2026-01-01T00:00Z into `out`."""
    return otlp_file.write(generate_requests(seed, calls_per_day, days), out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--out", type=Path, required=True, help="file to write (*.otlp.gz)")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help=f"random seed (default {DEFAULT_SEED})")
    parser.add_argument(
        "--calls-per-day", type=float, default=DEFAULT_CALLS_PER_DAY, help="average API calls per day before incidents"
    )
    parser.add_argument("--days", type=int, default=DEFAULT_DAYS, help="length of the window ending 2026-01-01")
    args = parser.parse_args(argv)
    if args.days < 1 or args.calls_per_day <= 0:
        parser.error("--days and --calls-per-day must be positive")
    written = generate(args.out, seed=args.seed, calls_per_day=args.calls_per_day, days=args.days)
    print(f"wrote {written.spans:,} spans in {written.messages} messages ({written.bytes / 1e6:.2f} MB) to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
