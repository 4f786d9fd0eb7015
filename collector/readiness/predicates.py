"""The SQL phrases about a call that the checklist items are written in (constants; every value is bound)."""

from __future__ import annotations

WRAPPER = "source_dialect = 'llmledger'"  # our wrapper: a NULL max_tokens / request_id / ttft means "not set"
GENERATION = "operation IN ('chat', 'text_completion', 'completion', 'responses', 'generate_content')"
SERVER_ERROR = (
    "status = 'error' AND (http_status >= 500 OR (http_status IS NULL AND error_type = 'InternalServerError'))"
)
RATE_LIMITED = "status = 'error' AND (http_status = 429 OR (http_status IS NULL AND error_type = 'RateLimitError'))"
# Errors of another instrumentation that say neither a status nor a known class: could be anything. (The wrapper
# records the status whenever a response came back, so its status-less errors are connection errors.)
_KNOWN_ERRORS = (
    "'RateLimitError', 'InternalServerError', 'APIConnectionError', 'APITimeoutError', 'BadRequestError', "
    "'AuthenticationError', 'PermissionDeniedError', 'NotFoundError', 'ConflictError', 'UnprocessableEntityError'"
)
UNCLASSIFIED = (
    f"status = 'error' AND http_status IS NULL AND NOT {WRAPPER} AND coalesce(error_type, '') NOT IN ({_KNOWN_ERRORS})"
)
# Batch API results are read from a file: their requests (and max tokens) are not seen.
LIVE_GENERATION = f"{WRAPPER} AND {GENERATION} AND batch IS NOT TRUE"
TRUNCATED = "list_contains(string_split(finish_reason, ','), 'length')"
PINNED = r"(regexp_matches(request_model, '-(\d{4}-\d{2}-\d{2}|\d{4})$') OR starts_with(request_model, 'ft:'))"
NON_PROD = "environment IS NOT NULL AND NOT list_contains($production, environment)"
NON_PROD_ERROR = (
    f"{NON_PROD} AND (http_status = 429 OR http_status >= 500 "
    "OR error_type IN ('RateLimitError', 'InternalServerError'))"
)
MODEL = "coalesce(request_model, response_model)"
# The guard (llmledger/guard/): a call it stopped in the app never reached the API, so it is no server's error;
# a budget it enforced left the rule's id and what it did on the call.
SENT = "coalesce(guard_action, '') NOT IN ('blocked', 'circuit_open')"
BREAKER_ON = "list_contains(string_split(guard_features, ','), 'breaker')"
GUARD_BUDGET_ACTION = "guard_budget_id IS NOT NULL AND guard_action IN ('warned', 'blocked', 'downgraded')"
