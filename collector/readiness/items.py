"""The checklist itself: its five categories and their items (5 scored in each, plus advice), each with its
aggregates, judge, breaking call and fix."""

from __future__ import annotations

from collector.query.filters import UNPRICED
from collector.readiness import fixes, judges
from collector.readiness.model import Item
from collector.readiness.predicates import (
    BREAKER_ON,
    GENERATION,
    GUARD_BUDGET_ACTION,
    LIVE_GENERATION,
    MODEL,
    NON_PROD,
    NON_PROD_ERROR,
    PINNED,
    RATE_LIMITED,
    SENT,
    SERVER_ERROR,
    TRUNCATED,
    UNCLASSIFIED,
    WRAPPER,
)
from collector.readiness.signal_items import SIGNAL_ITEMS

CATEGORIES = (
    ("eh", "Error handling"),
    ("sec", "Security"),
    ("cost", "Cost management"),
    ("mon", "Monitoring"),
    ("test", "Testing"),
)

ITEMS: tuple[Item, ...] = (
    Item(
        "eh.retries", "Retries on (max_retries above 0)", judges.retries,
        fixes.static("Keep the SDK's automatic retries (2 by default; they back off on 408/409/429/5xx): never pass "
                     "max_retries=0.", "client = OpenAI(max_retries=3)"),
        {"known": "count(*) FILTER (WHERE client_max_retries IS NOT NULL)",
         "bad": "count(*) FILTER (WHERE client_max_retries = 0)", "calls": "count(*)"},
        bad="client_max_retries = 0",
    ),
    Item(
        "eh.timeout", "Timeouts of 120 s or less", judges.timeout,
        fixes.static("Set an explicit timeout of at most 120 s (the SDK's default is 600 s).",
                     "client = OpenAI(timeout=60.0, max_retries=3)"),
        {"known": "count(*) FILTER (WHERE client_timeout_s IS NOT NULL)",
         "bad": "count(*) FILTER (WHERE client_timeout_s > 120)", "calls": "count(*)",
         "longest": "max(client_timeout_s)"},
        bad="client_timeout_s > 120",
    ),
    Item(
        "eh.error_rate", "Server error rate under 2%", judges.error_rate,
        fixes.static("Retry 5xx with backoff (the SDK does), and degrade gracefully when they persist: a fallback "
                     "model, a cached answer or a clear message.",
                     "try:\n    answer = client.chat.completions.create(...)\nexcept openai.InternalServerError:\n"
                     "    answer = fallback()"),
        {"bad": f"count(*) FILTER (WHERE {SERVER_ERROR})", "calls": f"count(*) FILTER (WHERE {SENT})",
         "unclassified": f"count(*) FILTER (WHERE {UNCLASSIFIED})"},
        bad=SERVER_ERROR, group=("model", MODEL),
    ),
    Item(
        "eh.circuit_breaker", "A circuit breaker guards at least 95% of calls", judges.circuit_breaker,
        fixes.static("Stop calling a model that keeps failing: turn the guard on (its breaker opens after repeated "
                     "5xx, timeouts or connection errors, fails fast or routes to a fallback, and probes after a "
                     "cool-down); a breaker of your own passes once attested.",
                     "llmledger.instrument(guard=GuardSettings(fallbacks={'gpt-4o': 'gpt-4o-mini'}))"),
        {"known": f"count(*) FILTER (WHERE {WRAPPER})", "good": f"count(*) FILTER (WHERE {WRAPPER} AND {BREAKER_ON})",
         "unjudged": f"count(*) FILTER (WHERE NOT {WRAPPER})",
         "circuit_open": "count(*) FILTER (WHERE guard_action IN ('circuit_open', 'rerouted'))"},
        bad=f"{WRAPPER} AND {BREAKER_ON} IS NOT TRUE", advice=True,
    ),
    Item(
        "eh.rate_limited", "Under 0.5% of calls still rate-limited after retries", judges.rate_limited,
        fixes.static("Smooth bursts (a queue or token bucket), retry longer, move non-urgent work to the Batch API, "
                     "or ask OpenAI for a higher rate limit.", "client = OpenAI(max_retries=5)"),
        {"bad": f"count(*) FILTER (WHERE {RATE_LIMITED})", "calls": f"count(*) FILTER (WHERE {SENT})",
         "unclassified": f"count(*) FILTER (WHERE {UNCLASSIFIED})"},
        bad=RATE_LIMITED,
    ),
    Item(
        "eh.truncation", "Under 1% of answers cut off at max tokens", judges.truncation,
        fixes.static("Raise the token limit where answers are cut off (finish_reason 'length'), or ask for shorter "
                     "answers; check finish_reason before using an answer.",
                     "response = client.chat.completions.create(..., max_completion_tokens=2048)\n"
                     "if response.choices[0].finish_reason == 'length':\n    ..."),
        {"known": "count(*) FILTER (WHERE finish_reason IS NOT NULL)",
         "bad": f"count(*) FILTER (WHERE {TRUNCATED})",
         "unjudged": f"count(*) FILTER (WHERE finish_reason IS NULL AND status = 'ok' AND {GENERATION})"},
        bad=TRUNCATED,
    ),
    Item(
        "sec.content_off", "Prompt and completion content off, or redacted", judges.content,
        fixes.static("Leave content capture off in production (the default), or keep it redacted.",
                     "llmledger.instrument(capture_content=False)  # or unset LLMLEDGER_CAPTURE_CONTENT"),
        {"known": "count(*) FILTER (WHERE content_captured IS NOT NULL)",
         "bad": "count(*) FILTER (WHERE content_captured AND content_redacted IS NOT TRUE)", "calls": "count(*)"},
        bad="content_captured AND content_redacted IS NOT TRUE",
    ),
    Item(
        "sec.key_scope", "Project or service-account API keys only", judges.key_scope,
        fixes.static("Use a project key (sk-proj-) or a service account key (sk-svcacct-) scoped to this app, never a "
                     "user's or an admin key.", "client = OpenAI(api_key=os.environ['OPENAI_API_KEY'])  # sk-proj-..."),
        {"known": "count(*) FILTER (WHERE key_kind IS NOT NULL)",
         "bad": "count(*) FILTER (WHERE key_kind NOT IN ('project', 'service_account'))", "calls": "count(*)",
         "kinds": "histogram(key_kind) FILTER (WHERE key_kind IS NOT NULL)"},
        bad="key_kind NOT IN ('project', 'service_account')",
    ),
    Item(
        "sec.end_user", "At least 95% of calls identify the end user", judges.end_user,
        fixes.static("Say whose request it is: OpenAI's safety_identifier (a hash, never an e-mail), or "
                     "llmledger.attributes(user=...).",
                     "with llmledger.attributes(user=current_user.id):\n"
                     "    client.chat.completions.create(..., safety_identifier=hashed_user_id)"),
        {"known": "count(*) FILTER (WHERE user_set IS NOT NULL OR end_user IS NOT NULL)",
         "good": "count(*) FILTER (WHERE user_set OR end_user IS NOT NULL)",
         "unjudged": "count(*) FILTER (WHERE user_set IS NULL AND end_user IS NULL)"},
        bad="user_set = false AND end_user IS NULL",
    ),
    Item(
        "sec.collector_auth", "The collector requires tokens or listens on loopback only", judges.collector_auth,
        fixes.static("Set LLMLEDGER_INGEST_TOKEN, LLMLEDGER_READ_TOKEN and LLMLEDGER_ADMIN_TOKEN (or the _FILE forms), "
                     "or listen on 127.0.0.1."),
        observed=False,
    ),
    Item(
        "sec.no_secrets", "No API key in stored telemetry", judges.no_secrets,
        fixes.static("Find where a key gets into a label (feature, tag, user) or an error message and remove it; "
                     "rotate the key: it left the app.",
                     "llmledger.attributes(feature='search')  # labels never hold secrets"),
    ),
    Item(
        "cost.max_tokens", "At least 99% of calls set max tokens", judges.max_tokens,
        fixes.static("Cap every generation: max_completion_tokens (chat), max_output_tokens (Responses).",
                     "client.chat.completions.create(..., max_completion_tokens=1024)"),
        {"known": f"count(*) FILTER (WHERE {LIVE_GENERATION})",
         "good": f"count(*) FILTER (WHERE {LIVE_GENERATION} AND max_tokens IS NOT NULL)",
         "unjudged": f"count(*) FILTER (WHERE NOT {WRAPPER} AND {GENERATION})"},
        bad=f"{LIVE_GENERATION} AND max_tokens IS NULL",
    ),
    Item(
        "cost.budget_rule", "A spend or forecast alert covers the service, or the guard enforces a budget",
        judges.budget, fixes.budget,
        {"cost": "sum(cost_usd)", "guard_budget_calls": f"count(*) FILTER (WHERE {GUARD_BUDGET_ACTION})",
         "guard_budget_ids": f"list(DISTINCT guard_budget_id ORDER BY guard_budget_id) "
                             f"FILTER (WHERE {GUARD_BUDGET_ACTION})"},
        observed=False,
    ),
    Item(
        "cost.caching", "At least 20% of long prompts' input tokens cached", judges.caching,
        fixes.static("Put the fixed part of prompts (instructions, examples, tools) first and the variable part last, "
                     "so prompts of 1,024+ tokens share a cacheable prefix; a prompt_cache_key groups similar calls.",
                     "client.chat.completions.create(messages=[SYSTEM, *EXAMPLES, user_message], "
                     "prompt_cache_key='support-v3')"),
        {"known": "count(*) FILTER (WHERE input_tokens >= 1024 AND cached_input_tokens IS NOT NULL)",
         "input": "coalesce(sum(input_tokens) FILTER (WHERE input_tokens >= 1024 "
                  "AND cached_input_tokens IS NOT NULL), 0)",
         "cached": "coalesce(sum(cached_input_tokens) FILTER (WHERE input_tokens >= 1024), 0)",
         "unjudged": "count(*) FILTER (WHERE input_tokens >= 1024 AND cached_input_tokens IS NULL)"},
    ),
    Item(
        "cost.priced", "Every call priced", judges.priced,
        fixes.static("Add the unpriced models to the collector's --prices overrides file (or update genai-prices).",
                     "[[models]]\nmodel = \"my-model\"\ninput = 1.25  # USD per million tokens\noutput = 10.0"),
        {"bad": f"count(*) FILTER (WHERE {UNPRICED})"},
        bad=UNPRICED, group=("model", MODEL),
    ),
    Item(
        "cost.batch", "Batch-eligible features use the Batch API", judges.batch,
        fixes.static("Send non-interactive work (evaluations, backfills, nightly jobs) through the Batch API at half "
                     "price; mark such features batch-eligible on the Readiness page.",
                     "client.batches.create(input_file_id=file.id, endpoint='/v1/chat/completions', "
                     "completion_window='24h')"),
        {"known": "count(*) FILTER (WHERE list_contains($batch_features, feature))",
         "good": "count(*) FILTER (WHERE list_contains($batch_features, feature) AND batch)"},
        bad="list_contains($batch_features, feature) AND batch IS NOT TRUE",
    ),
    Item(
        "mon.request_ids", "At least 99% of calls keep the request id", judges.request_ids,
        fixes.static("Record x-request-id on every call (the llmledger wrapper does; log it with errors too) so "
                     "OpenAI support can trace a call.", "llmledger.instrument()"),
        {"known": f"count(*) FILTER (WHERE {WRAPPER} AND NOT (status = 'error' AND http_status IS NULL))",
         "good": f"count(*) FILTER (WHERE {WRAPPER} AND NOT (status = 'error' AND http_status IS NULL) "
                 "AND request_id IS NOT NULL)",
         "unjudged": f"count(*) FILTER (WHERE NOT {WRAPPER})"},
        bad=f"{WRAPPER} AND NOT (status = 'error' AND http_status IS NULL) AND request_id IS NULL",
        group=("model", MODEL),
    ),
    Item(
        "mon.ttft", "Streams report time to first token and usage", judges.ttft,
        fixes.static("Ask streams for usage (stream_options include_usage: the wrapper adds it unless "
                     "LLMLEDGER_STREAM_USAGE=false) and read them to the end.",
                     "client.chat.completions.create(..., stream=True, stream_options={'include_usage': True})"),
        {"known": f"count(*) FILTER (WHERE stream AND status = 'ok' AND {WRAPPER})",
         "good": f"count(*) FILTER (WHERE stream AND status = 'ok' AND {WRAPPER} AND ttft_ms IS NOT NULL "
                 "AND input_tokens IS NOT NULL AND usage_estimated IS NOT TRUE)",
         "unjudged": f"count(*) FILTER (WHERE stream AND status = 'ok' AND NOT {WRAPPER})"},
        bad=f"stream AND status = 'ok' AND {WRAPPER} AND (ttft_ms IS NULL OR input_tokens IS NULL "
            "OR usage_estimated IS TRUE)",
    ),
    Item(
        "mon.error_alert", "An error alert covers the service", judges.rule_item(("error_rate", "errors"), "error"),
        fixes.alert("Alert on the error rate.", "error rate", metric="error_rate", window="5m", op=">",
                    threshold=0.05, min_requests=20, **{"for": "5m"}),
        observed=False,
    ),
    Item(
        "mon.latency_alert", "A latency alert covers the service",
        judges.rule_item(("latency_p95_ms", "latency_p99_ms", "ttft_p95_ms"), "latency"),
        fixes.alert("Alert when p95 latency passes about twice the period's.", "p95 latency",
                    metric="latency_p95_ms", window="5m", op=">", threshold=10_000.0, min_requests=20,
                    **{"for": "10m"}),
        {"p95": "quantile_cont(duration_ms, 0.95)"}, observed=False,
    ),
    Item(
        "mon.ratelimit_alert", "A rate-limit headroom alert covers the service",
        judges.rule_item(("ratelimit_headroom_requests_pct", "ratelimit_headroom_tokens_pct"), "rate-limit"),
        fixes.alert("Alert before the rate limit is reached.", "rate-limit headroom",
                    metric="ratelimit_headroom_requests_pct", window="5m", op="<", threshold=10.0),
        observed=False,
    ),
    Item(
        "test.model_pinned", "Production pins dated model snapshots", judges.model_pinned,
        fixes.static("Name a dated snapshot so a model update can't change answers under you; move to a new one after "
                     "testing it.", "client.chat.completions.create(model='gpt-4o-2024-08-06', ...)  # not 'gpt-4o'"),
        {"known": f"count(*) FILTER (WHERE request_model IS NOT NULL AND {GENERATION})",
         "bad": f"count(*) FILTER (WHERE request_model IS NOT NULL AND {GENERATION} AND NOT {PINNED})",
         "calls": f"count(*) FILTER (WHERE {GENERATION})"},
        bad=f"request_model IS NOT NULL AND {GENERATION} AND NOT {PINNED}", group=("model", "request_model"),
    ),
    Item(
        "test.non_prod_traffic", "Traffic from a non-production environment", judges.non_prod_traffic,
        fixes.static("Run the app in staging or CI with the same instrumentation, naming the environment.",
                     "OTEL_RESOURCE_ATTRIBUTES=deployment.environment.name=staging"),
        {"good": f"count(*) FILTER (WHERE {NON_PROD})", "no_env": "count(*) FILTER (WHERE environment IS NULL)",
         "environments": f"list(DISTINCT environment) FILTER (WHERE {NON_PROD})"},
        calls="all",
    ),
    Item(
        "test.error_paths", "Non-production traffic exercised 429/5xx and retries", judges.error_paths,
        fixes.static("In staging, inject failures (a fake or proxy answering 429 and 500) and check the app retries "
                     "and recovers.", "fake.enqueue(Reply(status=429, headers={'retry-after-ms': '10'}))"),
        {"calls": f"count(*) FILTER (WHERE {NON_PROD})", "errors": f"count(*) FILTER (WHERE {NON_PROD_ERROR})",
         "retried": f"count(*) FILTER (WHERE {NON_PROD} AND attempts > 1)",
         "attempts_known": f"count(*) FILTER (WHERE {NON_PROD} AND attempts IS NOT NULL)"},
        calls="all",
    ),
    Item(
        "test.load", "Load tested at expected peak (attested)", judges.attested("test.load"),
        fixes.attest("test.load", "Load-test at the expected peak (rate limits, latency, cost)"), observed=False,
    ),
    Item(
        "test.mocked", "Tests run against a mocked OpenAI API (attested)", judges.attested("test.mocked"),
        fixes.attest("test.mocked", "Run the test suite against a fake OpenAI API (no network, no spend)"),
        observed=False,
    ),
)  # fmt: skip
ITEMS += SIGNAL_ITEMS  # advice evidenced by the wrapper's content signals, after each category's own items
ITEM_IDS = tuple(item.id for item in ITEMS)
SCORED = tuple(item for item in ITEMS if not item.advice)
MAX_SCORE = len(SCORED)
