"""Every span attribute name of the llmledger span contract (see docs/architecture.md).

The wrapper, the collector's normalizer and the tests import these constants; no attribute
name is spelled out anywhere else.
"""

from __future__ import annotations

# OpenTelemetry GenAI semantic conventions
GEN_AI_OPERATION_NAME = "gen_ai.operation.name"
GEN_AI_PROVIDER_NAME = "gen_ai.provider.name"
GEN_AI_REQUEST_MODEL = "gen_ai.request.model"
GEN_AI_RESPONSE_MODEL = "gen_ai.response.model"
GEN_AI_RESPONSE_ID = "gen_ai.response.id"
GEN_AI_RESPONSE_FINISH_REASONS = "gen_ai.response.finish_reasons"
GEN_AI_REQUEST_MAX_TOKENS = "gen_ai.request.max_tokens"
GEN_AI_REQUEST_TEMPERATURE = "gen_ai.request.temperature"
GEN_AI_REQUEST_STREAM = "gen_ai.request.stream"
GEN_AI_USAGE_INPUT_TOKENS = "gen_ai.usage.input_tokens"
GEN_AI_USAGE_OUTPUT_TOKENS = "gen_ai.usage.output_tokens"
GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS = "gen_ai.usage.cache_read.input_tokens"
GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS = "gen_ai.usage.cache_write.input_tokens"
# Per modality, each inside gen_ai.usage.input_tokens / output_tokens.
GEN_AI_USAGE_AUDIO_INPUT_TOKENS = "gen_ai.usage.audio.input_tokens"
GEN_AI_USAGE_AUDIO_OUTPUT_TOKENS = "gen_ai.usage.audio.output_tokens"
GEN_AI_USAGE_IMAGE_INPUT_TOKENS = "gen_ai.usage.image.input_tokens"
GEN_AI_USAGE_IMAGE_OUTPUT_TOKENS = "gen_ai.usage.image.output_tokens"
GEN_AI_USAGE_TEXT_INPUT_TOKENS = "gen_ai.usage.text.input_tokens"
GEN_AI_USAGE_TEXT_OUTPUT_TOKENS = "gen_ai.usage.text.output_tokens"
GEN_AI_USAGE_REASONING_OUTPUT_TOKENS = "gen_ai.usage.reasoning.output_tokens"
GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK = "gen_ai.response.time_to_first_chunk"
GEN_AI_USAGE_COST_AMOUNT = "gen_ai.usage.cost.amount"
GEN_AI_USAGE_COST_CURRENCY = "gen_ai.usage.cost.currency"
GEN_AI_USAGE_COST_SOURCE = "gen_ai.usage.cost.source"
GEN_AI_INPUT_MESSAGES = "gen_ai.input.messages"
GEN_AI_OUTPUT_MESSAGES = "gen_ai.output.messages"

# OpenAI-specific
OPENAI_API_TYPE = "openai.api.type"
OPENAI_REQUEST_SERVICE_TIER = "openai.request.service_tier"
OPENAI_RESPONSE_SERVICE_TIER = "openai.response.service_tier"

# General OpenTelemetry conventions
SERVER_ADDRESS = "server.address"
SERVER_PORT = "server.port"
ERROR_TYPE = "error.type"
HTTP_RESPONSE_STATUS_CODE = "http.response.status_code"
SERVICE_NAME = "service.name"
SERVICE_VERSION = "service.version"
DEPLOYMENT_ENVIRONMENT_NAME = "deployment.environment.name"

# llmledger's own
PRICE_VERSION = "llmledger.price.version"
REQUEST_ID = "llmledger.request_id"
ATTEMPTS = "llmledger.attempts"
RATELIMIT_LIMIT_REQUESTS = "llmledger.ratelimit.limit_requests"
RATELIMIT_REMAINING_REQUESTS = "llmledger.ratelimit.remaining_requests"
RATELIMIT_LIMIT_TOKENS = "llmledger.ratelimit.limit_tokens"
RATELIMIT_REMAINING_TOKENS = "llmledger.ratelimit.remaining_tokens"
USAGE_ESTIMATED = "llmledger.usage.estimated"
# What a call is billed on besides tokens (docs/architecture.md, Billing units).
BILLING_UNIT = "llmledger.billing_unit"  # tokens | images | characters | audio_seconds | requests
USAGE_IMAGES = "llmledger.usage.images"  # images generated (per-image models price count x size x quality)
IMAGE_SIZE = "llmledger.image.size"
IMAGE_QUALITY = "llmledger.image.quality"
USAGE_INPUT_CHARACTERS = "llmledger.usage.input_characters"  # text-to-speech models billed per character
USAGE_AUDIO_SECONDS = "llmledger.usage.audio_seconds"  # transcription models billed per audio second
USAGE_WEB_SEARCH_CALLS = "llmledger.usage.web_search_calls"  # the Responses API's built-in tools, per call
USAGE_FILE_SEARCH_CALLS = "llmledger.usage.file_search_calls"
USAGE_CODE_INTERPRETER_SESSIONS = "llmledger.usage.code_interpreter_sessions"  # containers created
USAGE_IMAGE_GENERATION_CALLS = "llmledger.usage.image_generation_calls"
DEPLOYMENT = "llmledger.deployment"  # Azure OpenAI's deployment name (the model comes from the response)
BATCH = "llmledger.batch"
BATCH_ID = "llmledger.batch.id"
END_USER = "llmledger.end_user"
OPENAI_PROJECT = "llmledger.openai.project"
TEAM = "llmledger.team"
FEATURE = "llmledger.feature"
TAG_PREFIX = "llmledger.tag."

# The guard (llmledger/guard/): what it decided for a call
GUARD_ENABLED = "llmledger.guard.enabled"  # on every span of a guarded process (readiness: budget and breaker items)
GUARD_FEATURES = "llmledger.guard.features"  # the guard's parts on: "budgets,breaker,pace" (a subset, in this order)
GUARD_ACTION = "llmledger.guard.action"  # warned | blocked | downgraded | circuit_open | rerouted | paced
GUARD_BUDGET_ID = "llmledger.guard.budget_id"  # the collector's rule id of the budget that acted
GUARD_BREAKER = "llmledger.guard.breaker"  # "provider/model" of the circuit that acted
GUARD_ORIGINAL_MODEL = "llmledger.guard.original_model"  # the model the app asked for, before a downgrade/reroute
GUARD_WAIT_MS = "llmledger.guard.wait_ms"  # how long the pacer held the call
GUARD_WARNED_EVENT = "llmledger.guard.warned"  # span event of the call that reached a `warn` budget
GUARD_FEATURE_NAMES = ("budgets", "breaker", "pace")
GUARD_ACTIONS = ("warned", "blocked", "downgraded", "circuit_open", "rerouted", "paced")

# Checklist signals (readiness score)
CLIENT_TIMEOUT_S = "llmledger.client.timeout_s"
CLIENT_MAX_RETRIES = "llmledger.client.max_retries"
CLIENT_KEY_KIND = "llmledger.client.key_kind"
REQUEST_USER_SET = "llmledger.request.user_set"
CONTENT_CAPTURED = "llmledger.content.captured"
CONTENT_REDACTED = "llmledger.content.redacted"

# Safety and quality signals (llmledger/wrapper/signals.py): facts about a call's content — counts, flags, lengths —
# worked out in the app's process on the finisher's thread; the text itself never leaves. Absent when signals are off
# (instrument(signals=False), LLMLEDGER_SIGNALS=false) or when the call has nothing to say it about.
SIGNALS_VERSION = "llmledger.signals.version"  # the pattern lists' version the counts come from (on every call)
INPUT_SPECIAL_TOKENS = "llmledger.input.special_tokens"  # special-token strings (<|im_start|>, ...) in any message
INPUT_INJECTION_PHRASES = "llmledger.input.injection_phrases"  # prompt-injection phrases in user-role content
INPUT_CONTEXT_USED_PCT = "llmledger.input.context_used_pct"  # user-role input tokens / model's context window x 100
INPUT_USER_DELIMITED = "llmledger.input.user_delimited"  # user-role content holds a tagged or fenced block
OUTPUT_PII_MATCHES = "llmledger.output.pii_matches"  # e-mail, card, phone, API-key patterns in the model's answer
OUTPUT_REFUSAL = "llmledger.output.refusal"  # the answer is a refusal (message.refusal, a refusal output item)
OUTPUT_PARSE_FAILED = "llmledger.output.parse_failed"  # parse() could not validate the answer against its schema
OUTPUT_JSON_TRUNCATED = "llmledger.output.json_truncated"  # a JSON answer (response format set) cut off by length
REQUEST_MODERATED = "llmledger.request.moderated"  # a moderations call ended earlier in the same trace or scope
REQUEST_RESPONSE_FORMAT = "llmledger.request.response_format"  # json_schema | json_object | text, when set
REQUEST_SYSTEM_MESSAGE = "llmledger.request.system_message"  # a system/developer message or instructions present
REQUEST_STOP_SET = "llmledger.request.stop_set"  # stop sequences set
REQUEST_DIMENSIONS_SET = "llmledger.request.dimensions_set"  # embeddings: `dimensions` set (embeddings calls only)
REQUEST_TOOLS = "llmledger.request.tools"  # function tools offered
REQUEST_TOOLS_DESCRIBED = "llmledger.request.tools_described"  # of those, with a description
REQUEST_TOOL_CHOICE_SET = "llmledger.request.tool_choice_set"  # tool_choice set (when tools are offered)
REQUEST_TOOL_RESULTS_UNMATCHED = "llmledger.request.tool_results_unmatched"  # tool results answering no call of the
# assistant turn before them (tool_call_id / call_id unknown there)
REQUEST_TOOL_CALLS_UNANSWERED = "llmledger.request.tool_calls_unanswered"  # calls of an assistant turn with no
# result before the next turn (parallel tool calls must all be answered at once)
CLIENT_REUSED = "llmledger.client.reused"  # the call's HTTP connection pool served an earlier call of this process
SIGNAL_ATTRIBUTES = (
    SIGNALS_VERSION, INPUT_SPECIAL_TOKENS, INPUT_INJECTION_PHRASES, INPUT_CONTEXT_USED_PCT, INPUT_USER_DELIMITED,
    OUTPUT_PII_MATCHES, OUTPUT_REFUSAL, OUTPUT_PARSE_FAILED, OUTPUT_JSON_TRUNCATED, REQUEST_MODERATED,
    REQUEST_RESPONSE_FORMAT, REQUEST_SYSTEM_MESSAGE, REQUEST_STOP_SET, REQUEST_DIMENSIONS_SET, REQUEST_TOOLS,
    REQUEST_TOOLS_DESCRIBED, REQUEST_TOOL_CHOICE_SET, REQUEST_TOOL_RESULTS_UNMATCHED, REQUEST_TOOL_CALLS_UNANSWERED,
    CLIENT_REUSED,
)  # fmt: skip

# Fixed values
PROVIDER_OPENAI = "openai"
COST_CURRENCY_USD = "USD"
COST_SOURCE_LOCAL = "local"  # our estimate from the price list
COST_SOURCE_PROVIDER = "provider"  # what the provider itself reported (OpenRouter's usage.cost, a gateway header)
PROVIDER_AZURE = "azure.ai.openai"
PROVIDER_SELF_HOSTED = "self_hosted"  # a server on loopback or a private address: no list price
PROVIDER_OPENAI_COMPATIBLE = "openai_compatible"  # an unrecognised public server: OpenAI's list price, flagged
BILLING_UNITS = ("tokens", "images", "characters", "audio_seconds", "requests")

# x-ratelimit-* response header → attribute
RATELIMIT_HEADERS: dict[str, str] = {
    "x-ratelimit-limit-requests": RATELIMIT_LIMIT_REQUESTS,
    "x-ratelimit-remaining-requests": RATELIMIT_REMAINING_REQUESTS,
    "x-ratelimit-limit-tokens": RATELIMIT_LIMIT_TOKENS,
    "x-ratelimit-remaining-tokens": RATELIMIT_REMAINING_TOKENS,
}
REQUEST_ID_HEADER = "x-request-id"

# Other instrumentations' names (accepted by the collector, never written by the wrapper)
LLMLEDGER_PREFIX = "llmledger."

# Older OpenTelemetry names (GenAI conventions before gen_ai.provider.name; HTTP before 1.21)
GEN_AI_SYSTEM = "gen_ai.system"
GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS = "gen_ai.usage.cache_creation.input_tokens"  # now cache_write
USAGE_INPUT_AUDIO_TOKENS = "llmledger.usage.input_audio_tokens"  # our names before gen_ai.usage.audio.*
USAGE_OUTPUT_AUDIO_TOKENS = "llmledger.usage.output_audio_tokens"
COST_SOURCE_WRAPPER = "wrapper"  # our cost source before the convention's "local"
GEN_AI_USAGE_PROMPT_TOKENS = "gen_ai.usage.prompt_tokens"
GEN_AI_USAGE_COMPLETION_TOKENS = "gen_ai.usage.completion_tokens"
GEN_AI_OPENAI_REQUEST_SERVICE_TIER = "gen_ai.openai.request.service_tier"  # never priced on: see normalize
GEN_AI_OPENAI_RESPONSE_SERVICE_TIER = "gen_ai.openai.response.service_tier"
GEN_AI_RESPONSE_TIME_TO_FIRST_TOKEN = "gen_ai.response.time_to_first_token"
DEPLOYMENT_ENVIRONMENT = "deployment.environment"
HTTP_STATUS_CODE = "http.status_code"
TELEMETRY_SDK_NAME = "telemetry.sdk.name"

# OpenLLMetry (traceloop)
LLM_REQUEST_TYPE = "llm.request.type"
LLM_IS_STREAMING = "llm.is_streaming"
LLM_USAGE_TOTAL_TOKENS = "llm.usage.total_tokens"
LLM_RESPONSE_FINISH_REASON = "llm.response.finish_reason"
GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS_FLAT = "gen_ai.usage.cache_read_input_tokens"
GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS_FLAT = "gen_ai.usage.cache_creation_input_tokens"
GEN_AI_COMPLETION_PREFIX = "gen_ai.completion."  # gen_ai.completion.<n>.finish_reason
FINISH_REASON_SUFFIX = ".finish_reason"

# OpenLIT
GEN_AI_USAGE_COST = "gen_ai.usage.cost"
GEN_AI_SERVER_TIME_TO_FIRST_TOKEN = "gen_ai.server.time_to_first_token"
GEN_AI_REQUEST_IS_STREAM = "gen_ai.request.is_stream"
GEN_AI_USAGE_REASONING_TOKENS = "gen_ai.usage.reasoning_tokens"
GEN_AI_REQUEST_SERVICE_TIER = "gen_ai.request.service_tier"
GEN_AI_RESPONSE_SERVICE_TIER = "gen_ai.response.service_tier"
GEN_AI_SDK_VERSION = "gen_ai.sdk.version"
GEN_AI_APPLICATION_NAME = "gen_ai.application_name"
GEN_AI_ENVIRONMENT = "gen_ai.environment"
TELEMETRY_SDK_OPENLIT = "openlit"

# OpenInference (Arize)
OPENINFERENCE_SPAN_KIND = "openinference.span.kind"
LLM_MODEL_NAME = "llm.model_name"
LLM_REQUEST_MODEL_NAME = "llm.request.model_name"
LLM_RESPONSE_MODEL_NAME = "llm.response.model_name"
EMBEDDING_MODEL_NAME = "embedding.model_name"
LLM_PROVIDER = "llm.provider"
LLM_SYSTEM = "llm.system"
LLM_INVOCATION_PARAMETERS = "llm.invocation_parameters"
LLM_TOKEN_COUNT_PROMPT = "llm.token_count.prompt"
LLM_TOKEN_COUNT_COMPLETION = "llm.token_count.completion"
LLM_TOKEN_COUNT_TOTAL = "llm.token_count.total"
LLM_TOKEN_COUNT_PROMPT_DETAILS_CACHE_READ = "llm.token_count.prompt_details.cache_read"
LLM_TOKEN_COUNT_PROMPT_DETAILS_CACHE_INPUT = "llm.token_count.prompt_details.cache_input"
LLM_TOKEN_COUNT_PROMPT_DETAILS_CACHE_WRITE = "llm.token_count.prompt_details.cache_write"
LLM_TOKEN_COUNT_COMPLETION_DETAILS_REASONING = "llm.token_count.completion_details.reasoning"
LLM_FINISH_REASON = "llm.finish_reason"
LLM_COST_TOTAL = "llm.cost.total"

# Realtime sessions (llmledger/wrapper/realtime.py): the session a response span belongs to
REALTIME_SESSION_ID = "llmledger.realtime.session_id"
