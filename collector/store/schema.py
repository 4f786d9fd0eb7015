"""The `llm_calls` columns (no imports: the normalizer, the store and migrations share this list)."""

from __future__ import annotations

# (column, DuckDB type) of llm_calls as migration 1 created it. Never edit: later columns are appended below.
LLM_CALLS_COLUMNS_M001: tuple[tuple[str, str], ...] = (
    ("trace_id", "VARCHAR NOT NULL"),
    ("span_id", "VARCHAR NOT NULL"),
    ("parent_span_id", "VARCHAR"),
    ("start_time", "TIMESTAMPTZ NOT NULL"),
    ("duration_ms", "DOUBLE"),
    ("ttft_ms", "DOUBLE"),
    ("service", "VARCHAR"),
    ("environment", "VARCHAR"),
    ("service_version", "VARCHAR"),
    ("team", "VARCHAR"),
    ("feature", "VARCHAR"),
    ("end_user", "VARCHAR"),
    ("openai_project", "VARCHAR"),
    ("operation", "VARCHAR"),
    ("api_type", "VARCHAR"),
    ("request_model", "VARCHAR"),
    ("response_model", "VARCHAR"),
    ("stream", "BOOLEAN"),
    ("status", "VARCHAR NOT NULL"),
    ("error_type", "VARCHAR"),
    ("http_status", "INTEGER"),
    ("attempts", "INTEGER"),
    ("input_tokens", "BIGINT"),
    ("cached_input_tokens", "BIGINT"),
    ("cache_write_tokens", "BIGINT"),
    ("output_tokens", "BIGINT"),
    ("reasoning_tokens", "BIGINT"),
    ("cost_usd", "DECIMAL(18,9)"),
    ("span_cost_usd", "DECIMAL(18,9)"),
    ("cost_source", "VARCHAR"),
    ("price_version", "VARCHAR"),
    ("price_tier_fallback", "BOOLEAN"),
    ("service_tier", "VARCHAR"),
    ("batch", "BOOLEAN"),
    ("batch_id", "VARCHAR"),
    ("usage_estimated", "BOOLEAN"),
    ("request_id", "VARCHAR"),
    ("ratelimit_limit_requests", "BIGINT"),
    ("ratelimit_remaining_requests", "BIGINT"),
    ("ratelimit_limit_tokens", "BIGINT"),
    ("ratelimit_remaining_tokens", "BIGINT"),
    ("finish_reason", "VARCHAR"),
    ("max_tokens", "BIGINT"),
    ("temperature", "DOUBLE"),
    ("client_timeout_s", "DOUBLE"),
    ("client_max_retries", "INTEGER"),
    ("key_kind", "VARCHAR"),
    ("user_set", "BOOLEAN"),
    ("content_captured", "BOOLEAN"),
    ("content_redacted", "BOOLEAN"),
    ("tags", "VARCHAR"),  # JSON object text: {"tenant": "acme", ...}
    ("source_dialect", "VARCHAR NOT NULL"),
)

# Appended by migration 5 (audio tokens are inside input/output tokens and priced at audio rates).
LLM_CALLS_COLUMNS_M005: tuple[tuple[str, str], ...] = (
    ("input_audio_tokens", "BIGINT"),
    ("output_audio_tokens", "BIGINT"),
)

# Appended by migration 9: every billable route and provider (docs/architecture.md, Billing units).
LLM_CALLS_COLUMNS_M009: tuple[tuple[str, str], ...] = (
    ("provider", "VARCHAR"),  # gen_ai.provider.name: openai, azure.ai.openai, openrouter, anthropic, self_hosted, ...
    ("deployment", "VARCHAR"),  # Azure OpenAI's deployment name
    ("billing_unit", "VARCHAR"),  # tokens | images | characters | audio_seconds | requests
    ("input_image_tokens", "BIGINT"),  # inside input_tokens
    ("output_image_tokens", "BIGINT"),  # inside output_tokens
    ("images", "BIGINT"),
    ("image_size", "VARCHAR"),
    ("image_quality", "VARCHAR"),
    ("input_characters", "BIGINT"),
    ("audio_seconds", "DOUBLE"),
    ("web_search_calls", "BIGINT"),
    ("file_search_calls", "BIGINT"),
    ("code_interpreter_sessions", "BIGINT"),
    ("image_generation_calls", "BIGINT"),
    ("price_provider_fallback", "BOOLEAN"),  # priced at OpenAI's list: the provider's own list lacks the model
    ("sanity_flags", "VARCHAR"),  # comma-separated: tokens that contradict themselves, stored as reported
)

# Appended by migration 10: what the guard (llmledger/guard/) decided for a call (docs/architecture.md, Span contract).
LLM_CALLS_COLUMNS_M010: tuple[tuple[str, str], ...] = (
    ("guard_enabled", "BOOLEAN"),  # the app runs the guard (which of its parts: guard_features, from migration 11)
    ("guard_action", "VARCHAR"),  # warned | blocked | downgraded | circuit_open | rerouted | paced
    ("guard_budget_id", "BIGINT"),  # the alert rule id of the budget that acted
    ("guard_breaker", "VARCHAR"),  # "provider/model" of the circuit that acted
    ("guard_original_model", "VARCHAR"),  # the model the app asked for, before a downgrade or reroute
    ("guard_wait_ms", "DOUBLE"),  # how long the pacer held the call
)

# Appended by migration 11: which parts of the guard the app runs (a readiness item wants the circuit breaker on).
LLM_CALLS_COLUMNS_M011: tuple[tuple[str, str], ...] = (
    ("guard_features", "VARCHAR"),  # comma-separated, of budgets, breaker, pace
)

# Appended by migration 15: one row per call however many instrumentations reported it (collector/store/same_call.py).
LLM_CALLS_COLUMNS_M015: tuple[tuple[str, str], ...] = (
    ("response_id", "VARCHAR"),  # gen_ai.response.id: with request_id, what tells two reports of one call
    ("also_reported_by", "VARCHAR"),  # comma-separated dialects of the other reports merged into this row
    ("also_reported_spans", "VARCHAR"),  # their "trace_id/span_id", in the same order: re-sends are recognised
)

# Appended by migration 17: safety and quality signals about content, counted in the app (llmledger/wrapper/signals.py;
# docs/architecture.md, Span contract). NULL: not recorded (signals off, an older wrapper, another instrumentation).
LLM_CALLS_COLUMNS_M017: tuple[tuple[str, str], ...] = (
    ("signals_version", "VARCHAR"),  # the pattern lists' version the counts come from
    ("input_special_tokens", "INTEGER"),  # special-token strings (<|im_start|>, ...) in the request's messages
    ("input_injection_phrases", "INTEGER"),  # prompt-injection phrases in user-role content
    ("input_context_used_pct", "DOUBLE"),  # user-role input tokens as a percentage of the model's context window
    ("input_user_delimited", "BOOLEAN"),  # user-role content holds a tagged or fenced block
    ("output_pii_matches", "INTEGER"),  # e-mail, card, phone and API-key patterns in the answer
    ("output_refusal", "BOOLEAN"),  # the model refused
    ("output_parse_failed", "BOOLEAN"),  # parse() could not validate the answer (structured output)
    ("output_json_truncated", "BOOLEAN"),  # a JSON answer cut off by the token limit
    ("request_moderated", "BOOLEAN"),  # a moderations call ended earlier in the same trace or attributes() scope
    ("response_format", "VARCHAR"),  # json_schema | json_object | text, when the request set one
    ("system_message", "BOOLEAN"),  # a system or developer message (or instructions) present
    ("stop_set", "BOOLEAN"),  # stop sequences set
    ("dimensions_set", "BOOLEAN"),  # embeddings: dimensions set
    ("tools", "INTEGER"),  # function tools offered
    ("tools_described", "INTEGER"),  # of those, with a description
    ("tool_choice_set", "BOOLEAN"),  # tool_choice set when tools were offered
    ("tool_results_unmatched", "INTEGER"),  # tool results answering no call of the turn before them
    ("tool_calls_unanswered", "INTEGER"),  # tool calls left without a result before the next turn
    ("client_reused", "BOOLEAN"),  # the client's connection pool had served an earlier call
)

# Every column, in table order; the query API and CSV use the same names.
LLM_CALLS_COLUMNS: tuple[tuple[str, str], ...] = (
    LLM_CALLS_COLUMNS_M001
    + LLM_CALLS_COLUMNS_M005
    + LLM_CALLS_COLUMNS_M009
    + LLM_CALLS_COLUMNS_M010
    + LLM_CALLS_COLUMNS_M011
    + LLM_CALLS_COLUMNS_M015
    + LLM_CALLS_COLUMNS_M017
)
