"""The demo's world as plain data: its apps, the models they call, what they call them for, who serves them, and
three incidents."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from llmledger import semconv as sc

END = datetime(2026, 1, 1, tzinfo=UTC)  # every window ends here; `llmledger load` shifts it to end now


@dataclass(frozen=True)
class Model:
    snapshot: str  # the dated name responses report (images, speech and transcriptions report none)
    ttft_s: float  # median time to first token for a short prompt; for images, seconds per image
    tokens_per_s: float  # output speed
    reasoning: bool = False
    limit_requests: int = 5_000  # x-ratelimit-limit-* of a mid-tier organisation
    limit_tokens: int = 4_000_000


FINE_TUNED = "ft:gpt-4.1-mini-2025-04-14:acme:triage:B7x9kQ2d"  # genai-prices can't price it: shown as unpriced
OPENROUTER = "openrouter"  # gen_ai.provider.name, as the wrapper names OpenRouter (genai-prices' id)
OPENROUTER_MODEL = "openai/gpt-4o-mini"
MODELS: dict[str, Model] = {
    "gpt-4o-mini": Model("gpt-4o-mini-2024-07-18", 0.38, 85),
    "gpt-4o": Model("gpt-4o-2024-08-06", 0.55, 65, limit_tokens=800_000),
    "gpt-4.1": Model("gpt-4.1-2025-04-14", 0.6, 60, limit_tokens=800_000),
    "gpt-4.1-mini": Model("gpt-4.1-mini-2025-04-14", 0.42, 80),
    "gpt-5-mini": Model("gpt-5-mini-2025-08-07", 0.5, 110, reasoning=True),
    "o3-mini": Model("o3-mini-2025-01-31", 0.5, 150, reasoning=True),
    "text-embedding-3-small": Model("text-embedding-3-small", 0.08, 0, limit_tokens=5_000_000),
    FINE_TUNED: Model(FINE_TUNED, 0.3, 95, limit_requests=500, limit_tokens=200_000),
    "gpt-image-1": Model("gpt-image-1", 24.0, 0),
    "dall-e-3": Model("dall-e-3", 13.0, 0),
    "tts-1": Model("tts-1", 0.45, 0),
    "whisper-1": Model("whisper-1", 0.7, 0),
    "omni-moderation-latest": Model("omni-moderation-2024-09-26", 0.12, 0),
    OPENROUTER_MODEL: Model(OPENROUTER_MODEL, 0.65, 75),
}
# gpt-image-1's output tokens per image by quality and size (OpenAI's image generation guide).
IMAGE_OUTPUT_TOKENS = {
    "low": {"1024x1024": 272, "1024x1536": 408, "1536x1024": 400},
    "medium": {"1024x1024": 1056, "1024x1536": 1584, "1536x1024": 1568},
    "high": {"1024x1024": 4160, "1024x1536": 6240, "1536x1024": 6208},
}
IMAGE_INPUT_TOKENS = 323  # one uploaded image of an edit, as the fake OpenAI counts it


@dataclass(frozen=True)
class Service:
    name: str
    versions: tuple[tuple[date, str], ...]  # the production version deployed from that day on
    staging_version: str
    staging_share: float  # fraction of the app's calls made from staging
    project: str | None  # OpenAI project of the app's key (None: not an OpenAI key)
    key_kind: str
    timeout_s: float
    max_retries: int
    weekend: float  # weekend volume relative to a weekday
    peak_hour: float  # UTC
    peak_width_h: float
    night_floor: float  # volume at the quietest hour relative to the peak
    provider: str = sc.PROVIDER_OPENAI  # who serves the app's calls
    host: str = "api.openai.com"
    deployments: tuple[tuple[str, str], ...] = ()  # Azure OpenAI: (model, deployment name the app asks for)


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
        Service(
            name="hr-helpdesk",  # on Azure OpenAI in the EU, for data residency: not on OpenAI's bill
            versions=((date(2025, 1, 1), "1.4.2"), (date(2025, 12, 4), "1.5.0")),
            staging_version="1.6.0-rc.1",
            staging_share=0.04,
            project=None,
            key_kind="other",  # an Azure key has no sk- prefix
            timeout_s=20.0,
            max_retries=2,
            weekend=0.1,
            peak_hour=9.5,
            peak_width_h=3.0,
            night_floor=0.04,
            provider=sc.PROVIDER_AZURE,
            host="acme-hr-eu.openai.azure.com",
            deployments=(("gpt-4o-mini", "hr-chat"), ("text-embedding-3-small", "hr-embed")),
        ),
    )
}


@dataclass(frozen=True)
class Images:
    """What an image feature asks for: the first quality and size most often."""

    qualities: tuple[str, ...]
    sizes: tuple[str, ...]
    counts: tuple[int, ...] = (1,)  # images per request (n)
    edits: float = 0.0  # fraction of requests that edit uploaded images (input image tokens)


@dataclass(frozen=True)
class Feature:
    service: str
    team: str
    name: str
    model: str  # a key of MODELS
    # openai.api.type: chat_completions | responses | embeddings | images | audio_speech | audio_transcriptions |
    # moderations
    api: str
    share: float  # of the day's calls (normalised)
    input_tokens: int  # median, including any cached prefix; characters for speech, audio seconds for transcriptions
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
    web_search: bool = False  # a Responses feature with the web_search tool: one or more searches per answer
    images: Images | None = None
    provider: str | None = None  # a client of its own for another provider (None: the service's)


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
    # Routes billed other than by text tokens, and providers other than OpenAI: a few % of the calls.
    Feature("support-bot", "support", "message-moderation", "omni-moderation-latest", "moderations", 0.03, 0,
            users="customers"),
    Feature("support-bot", "support", "voice-replies", "tts-1", "audio_speech", 0.012, 420, users="customers"),
    Feature("support-bot", "support", "voicemail-transcripts", "whisper-1", "audio_transcriptions", 0.01, 38,
            users="customers"),
    Feature("search-api", "search", "web-answers", "gpt-4o-mini", "responses", 0.015, 5200, 420, max_tokens=1200,
            users="customers", user_param=True, web_search=True),
    Feature("sales-assistant", "sales", "email-visuals", "gpt-image-1", "images", 0.006, 90, users="reps",
            user_param=True,
            images=Images(("medium", "low", "high"), ("1024x1024", "1536x1024"), counts=(1, 1, 2), edits=0.25)),
    Feature("sales-assistant", "sales", "product-mockups", "dall-e-3", "images", 0.003, 0, users="reps",
            images=Images(("standard", "hd"), ("1024x1024", "1792x1024"))),
    Feature("doc-summarizer", "knowledge", "title-suggestions", OPENROUTER_MODEL, "chat_completions", 0.02, 900, 40,
            max_tokens=60, temperature=0.7, provider=OPENROUTER),
    Feature("hr-helpdesk", "people", "policy-answers", "gpt-4o-mini", "chat_completions", 0.025, 3400, 260,
            cached_prefix=1024, stream=True, max_tokens=700, temperature=0.2, users="employees", user_param=True),
    Feature("hr-helpdesk", "people", "policy-embed", "text-embedding-3-small", "embeddings", 0.01, 60,
            users="employees"),
)  # fmt: skip

USER_POOLS = {"customers": 320, "reps": 36, "employees": 140}


@dataclass(frozen=True)
class Route:
    """Who serves a feature's calls, as the wrapper records it from the client the app configured."""

    provider: str  # gen_ai.provider.name
    host: str  # server.address
    key_kind: str
    project: str | None
    request_model: str  # what the app asks for: the alias, a dated snapshot, or Azure's deployment name
    deployment: str | None = None


_OPENROUTER_HOST = "openrouter.ai"
_OPENROUTER_KEY_KIND = "user"  # an OpenRouter key (sk-or-v1-...) starts with sk-: the wrapper reads it as a user key


@functools.cache
def route(feature: Feature) -> Route:
    """The provider, host, key and model name a feature's calls go to."""
    service = SERVICES[feature.service]
    model = MODELS[feature.model]
    request_model = model.snapshot if feature.pinned else feature.model
    if feature.provider == OPENROUTER:
        return Route(OPENROUTER, _OPENROUTER_HOST, _OPENROUTER_KEY_KIND, None, request_model)
    deployment = dict(service.deployments).get(feature.model)
    return Route(
        service.provider, service.host, service.key_kind, service.project, deployment or request_model, deployment
    )


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
