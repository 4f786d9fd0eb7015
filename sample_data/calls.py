"""Each sample call's span attributes, as the wrapper would have set them: request, response, rate limits, cost
(sample_data/media.py for the media routes' answers, sample_data/costs.py for the cost)."""

from __future__ import annotations

import hashlib
import hmac
import itertools
import random
import string
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from llmledger import semconv as sc
from llmledger.wrapper.extract import ENDPOINTS
from sample_data.costs import add_cost
from sample_data.media import MEDIA_APIS, draw_media_usage, media_response_attributes
from sample_data.outcome import Usage, draw_attempts, draw_usage
from sample_data.traffic import NS, hour_weights
from sample_data.world import (
    MODELS,
    OPENROUTER,
    SERVICES,
    STORM,
    STORM_MODEL,
    USER_POOLS,
    Feature,
    Model,
    Route,
    Service,
    route,
)

_DEMO_SALT = b"llmledger-demo"  # end users are hashed as the wrapper does, with a fixed salt
_BASE62 = string.digits + string.ascii_letters
# openai.api.type → the wrapper's endpoint (operation name, and whether the request takes `stream`).
_ENDPOINTS = {endpoint.api_type: endpoint for endpoint in reversed(ENDPOINTS.values())}
_TEXT_APIS = frozenset({"chat_completions", "responses", "embeddings"})  # x-ratelimit-* counted in tokens


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


class CallMaker:
    """Draws each call's attributes with the generator's seeded `random.Random`, after the schedule has used it."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.users = {pool: _user_ids(pool, size) for pool, size in USER_POOLS.items()}
        self.user_weights = {pool: _zipf_cum_weights(size) for pool, size in USER_POOLS.items()}

    def call(self, start_ns: int, feature: Feature) -> Call:
        """The call made at `start_ns` for `feature`, with every attribute the wrapper would have set."""
        rng = self.rng
        service = SERVICES[feature.service]
        model = MODELS[feature.model]
        served = route(feature)
        at = datetime.fromtimestamp(start_ns / NS, tz=UTC)
        staging = rng.random() < service.staging_share
        environment, version = (
            ("staging", service.staging_version) if staging else ("production", _version(service, at))
        )
        attrs = self._request_attributes(feature, service, served)
        usage = draw_media_usage(rng, feature) if feature.api in MEDIA_APIS else draw_usage(rng, feature, model)
        attempts = draw_attempts(rng, feature, service, model, at, usage)
        if attempts.error is None:
            if feature.stream:
                attrs[sc.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK] = round(attempts.ttft_s, 6)
            if feature.api in MEDIA_APIS:
                media_response_attributes(attrs, feature, model.snapshot, usage)
                if feature.api == "moderations":
                    attrs[sc.GEN_AI_RESPONSE_ID] = "modr-" + "".join(rng.choices(_BASE62, k=24))
            else:
                self._response_attributes(attrs, feature, model, served, usage)
        attrs[sc.ATTEMPTS] = attempts.count
        if attempts.status is not None:
            attrs[sc.HTTP_RESPONSE_STATUS_CODE] = attempts.status
            if served.provider != OPENROUTER:  # OpenRouter sends no x-request-id
                attrs[sc.REQUEST_ID] = "req_" + rng.randbytes(16).hex()
        if attempts.error is not None:
            attrs[sc.ERROR_TYPE] = attempts.error
        # OpenAI's x-ratelimit-* of the organisation; other providers' headers differ and are not recorded.
        if attempts.status in (200, 429) and served.provider == sc.PROVIDER_OPENAI and feature.api in _TEXT_APIS:
            self._ratelimit_attributes(attrs, feature, model, at, limited=attempts.status == 429)
        if attempts.error is None:
            add_cost(attrs, feature, served, at)
        return Call(
            start_ns=start_ns,
            end_ns=start_ns + max(int(attempts.seconds * NS), 1_000_000),
            resource=(service.name, environment, version),
            attrs=attrs,
            error=attempts.error,
            trace_id=_nonzero(rng, 16),
            span_id=_nonzero(rng, 8),
        )

    def _request_attributes(self, feature: Feature, service: Service, served: Route) -> dict[str, Any]:
        endpoint = _ENDPOINTS[feature.api]
        attrs: dict[str, Any] = {
            sc.GEN_AI_OPERATION_NAME: endpoint.operation,
            sc.GEN_AI_PROVIDER_NAME: served.provider,
            sc.OPENAI_API_TYPE: feature.api,
            sc.GEN_AI_REQUEST_MODEL: served.request_model,
        }
        if feature.max_tokens is not None:
            attrs[sc.GEN_AI_REQUEST_MAX_TOKENS] = feature.max_tokens
        if feature.temperature is not None:
            attrs[sc.GEN_AI_REQUEST_TEMPERATURE] = feature.temperature
        if endpoint.streams:
            attrs[sc.GEN_AI_REQUEST_STREAM] = feature.stream
        if feature.tier is not None:
            attrs[sc.OPENAI_REQUEST_SERVICE_TIER] = feature.tier
        attrs[sc.REQUEST_USER_SET] = feature.user_param
        attrs[sc.SERVER_ADDRESS] = served.host
        attrs[sc.SERVER_PORT] = 443
        if served.project is not None:
            attrs[sc.OPENAI_PROJECT] = served.project
        attrs[sc.CLIENT_KEY_KIND] = served.key_kind
        attrs[sc.CLIENT_TIMEOUT_S] = service.timeout_s
        attrs[sc.CLIENT_MAX_RETRIES] = service.max_retries
        if served.deployment is not None:
            attrs[sc.DEPLOYMENT] = served.deployment
        if feature.users is not None:
            attrs[sc.END_USER] = self.rng.choices(
                self.users[feature.users], cum_weights=self.user_weights[feature.users]
            )[0]
        attrs[sc.TEAM] = feature.team
        attrs[sc.FEATURE] = feature.name
        attrs[sc.CONTENT_CAPTURED] = False
        attrs[sc.CONTENT_REDACTED] = False
        return attrs

    def _response_attributes(
        self, attrs: dict[str, Any], feature: Feature, model: Model, served: Route, usage: Usage
    ) -> None:
        attrs[sc.GEN_AI_RESPONSE_MODEL] = model.snapshot
        if served.provider == OPENROUTER:
            digits = "".join(self.rng.choices(string.digits, k=10))
            attrs[sc.GEN_AI_RESPONSE_ID] = f"gen-{digits}-" + "".join(self.rng.choices(_BASE62, k=20))
        elif feature.api == "chat_completions":
            attrs[sc.GEN_AI_RESPONSE_ID] = "chatcmpl-" + "".join(self.rng.choices(_BASE62, k=29))
        elif feature.api == "responses":
            attrs[sc.GEN_AI_RESPONSE_ID] = "resp_" + self.rng.randbytes(24).hex()
        if feature.api != "embeddings":
            if served.provider == sc.PROVIDER_OPENAI:  # only OpenAI's answers carry service_tier
                attrs[sc.OPENAI_RESPONSE_SERVICE_TIER] = feature.tier or "default"
            if usage.web_search_calls:
                attrs[sc.USAGE_WEB_SEARCH_CALLS] = usage.web_search_calls
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
        hours = hour_weights(feature)
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


def _nonzero(rng: random.Random, size: int) -> bytes:
    while True:
        value = rng.randbytes(size)
        if any(value):
            return value


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
