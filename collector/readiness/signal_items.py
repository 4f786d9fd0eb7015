"""Advice items evidenced by the wrapper's content signals (migration 17's columns): judged and shown like the scored
items, with evidence, example request ids and a fix, but not counted, so the 5 x 5 score stays comparable over time
(README, Production readiness)."""

from __future__ import annotations

from collector.readiness import fixes, signal_judges
from collector.readiness.model import Item
from collector.readiness.predicates import GENERATION

SIGNALLED = "signals_version IS NOT NULL"
JSON_ANSWER = "response_format IN ('json_schema', 'json_object')"
TOOL_USE = "(tools > 0 OR tool_results_unmatched IS NOT NULL)"
TOOL_TROUBLE = "(tool_results_unmatched > 0 OR tool_calls_unanswered > 0 OR tools_described < tools)"
# Batch API results are read from a file: their requests (and so their signals) are never seen.
UNSIGNALLED_GENERATION = f"count(*) FILTER (WHERE {GENERATION} AND batch IS NOT TRUE AND signals_version IS NULL)"
SIGNALLED_GENERATION = f"count(*) FILTER (WHERE {GENERATION} AND {SIGNALLED})"

SIGNAL_ITEMS: tuple[Item, ...] = (
    Item(
        "eh.structured_output", "Under 1% of JSON answers fail validation or are cut off",
        signal_judges.structured_output,
        fixes.static("Ask for a JSON schema (parse() with a pydantic model sets one), give the answer room "
                     "(max_completion_tokens), and handle a refusal or a cut-off answer instead of parsing it.",
                     "try:\n    completion = client.chat.completions.parse(..., response_format=Answer)\n"
                     "except openai.LengthFinishReasonError:\n    ...  # raise the limit or ask for less\n"
                     "message = completion.choices[0].message\nif message.refusal:\n    ...  # show the refusal"),
        {"known": f"count(*) FILTER (WHERE {JSON_ANSWER})",
         "bad": f"count(*) FILTER (WHERE {JSON_ANSWER} AND (output_parse_failed OR output_json_truncated))",
         "schema": "count(*) FILTER (WHERE response_format = 'json_schema')",
         "parse_failed": f"count(*) FILTER (WHERE {JSON_ANSWER} AND output_parse_failed)",
         "truncated": f"count(*) FILTER (WHERE {JSON_ANSWER} AND output_json_truncated)",
         "refusals": f"count(*) FILTER (WHERE {JSON_ANSWER} AND output_refusal)",
         "signalled": SIGNALLED_GENERATION, "unjudged": UNSIGNALLED_GENERATION},
        bad=f"{JSON_ANSWER} AND (output_parse_failed OR output_json_truncated)", advice=True,
    ),
    Item(
        "eh.tool_loop", "Tool calls answered right: every result matches a call, tools described",
        signal_judges.tool_loop,
        fixes.static("Answer every tool call of the assistant turn (parallel calls all at once, in the next messages) "
                     "with its own tool_call_id, describe every function tool, and say what tool_choice you want.",
                     "messages.append(completion.choices[0].message)\nfor call in completion.choices[0].message"
                     ".tool_calls:\n    messages.append({'role': 'tool', 'tool_call_id': call.id, "
                     "'content': run(call)})"),
        {"known": f"count(*) FILTER (WHERE {TOOL_USE})",
         "bad": f"count(*) FILTER (WHERE {TOOL_USE} AND {TOOL_TROUBLE})",
         "unmatched": "coalesce(sum(tool_results_unmatched), 0)",
         "unanswered": "coalesce(sum(tool_calls_unanswered), 0)",
         "undescribed": "coalesce(sum(tools - tools_described), 0)",
         "offered": "count(*) FILTER (WHERE tools > 0)", "choice_set": "count(*) FILTER (WHERE tool_choice_set)",
         "signalled": SIGNALLED_GENERATION, "unjudged": UNSIGNALLED_GENERATION},
        bad=TOOL_TROUBLE, advice=True,
    ),
    Item(
        "eh.connection_pooling", "At least half the calls reuse an OpenAI client (connection pooling)",
        signal_judges.connection_pooling,
        fixes.static("Make one client per process and share it: a client per call opens a new connection (TCP and "
                     "TLS handshakes) every time and runs out of sockets under load.",
                     "client = OpenAI()  # module level, reused by every request\n\ndef answer(question):\n"
                     "    return client.chat.completions.create(...)"),
        {"known": "count(*) FILTER (WHERE client_reused IS NOT NULL)",
         "good": "count(*) FILTER (WHERE client_reused)",
         "new_clients": "count(*) FILTER (WHERE client_reused = false)",
         "unjudged": "count(*) FILTER (WHERE client_reused IS NULL)"},
        bad="client_reused = false", advice=True,
    ),
    Item(
        "sec.input_sanitised", "No special-token strings reach the API; injection phrases counted",
        signal_judges.input_sanitised,
        fixes.static("Strip special-token strings from user input, send it as its own user message after a system "
                     "message, delimited (tags or fences) so the model treats it as data, and screen it for injection "
                     "phrases (the span counts them).",
                     "text = re.sub(r'<\\|[A-Za-z0-9_]{1,40}\\|>', '', user_text)\n"
                     "messages = [{'role': 'system', 'content': SYSTEM},\n"
                     "            {'role': 'user', 'content': f'<user_input>{text}</user_input>'}]"),
        {"known": "count(*) FILTER (WHERE input_special_tokens IS NOT NULL)",
         "bad": "count(*) FILTER (WHERE input_special_tokens > 0)", "calls": f"count(*) FILTER (WHERE {GENERATION})",
         "injection_calls": "count(*) FILTER (WHERE input_injection_phrases > 0)",
         "injection_phrases": "coalesce(sum(input_injection_phrases), 0)",
         "user_known": "count(*) FILTER (WHERE input_user_delimited IS NOT NULL)",
         "delimited": "count(*) FILTER (WHERE input_user_delimited)",
         "system_known": "count(*) FILTER (WHERE system_message IS NOT NULL)",
         "system": "count(*) FILTER (WHERE system_message)",
         "versions": f"list(DISTINCT signals_version) FILTER (WHERE {SIGNALLED})"},
        bad="input_special_tokens > 0", advice=True,
    ),
    Item(
        "sec.output_safety", "Answers holding PII patterns were moderated first", signal_judges.output_safety,
        fixes.static("Run the input through the Moderations API before generating (in the same request), and redact "
                     "or refuse answers holding e-mail addresses, card or phone numbers or keys.",
                     "if client.moderations.create(model='omni-moderation-latest', input=user_text).results[0]"
                     ".flagged:\n    return REFUSAL\nanswer = client.chat.completions.create(...)"),
        {"known": "count(*) FILTER (WHERE output_pii_matches IS NOT NULL)",
         "bad": "count(*) FILTER (WHERE output_pii_matches > 0 AND request_moderated IS NOT TRUE)",
         "calls": f"count(*) FILTER (WHERE {GENERATION})",
         "pii_calls": "count(*) FILTER (WHERE output_pii_matches > 0)",
         "pii_matches": "coalesce(sum(output_pii_matches), 0)",
         "moderated": "count(*) FILTER (WHERE output_pii_matches IS NOT NULL AND request_moderated)",
         "refusals": "count(*) FILTER (WHERE output_refusal)"},
        bad="output_pii_matches > 0 AND request_moderated IS NOT TRUE", advice=True,
    ),
    Item(
        "mon.context_used", "Under 1% of calls fill 80% of the context window with user input",
        signal_judges.context_used,
        fixes.static("Track how much of the window user input takes: count tokens before sending, and trim or "
                     "summarise old turns past a budget.",
                     "enc = tiktoken.encoding_for_model('gpt-4o')\n"
                     "while sum(len(enc.encode(m['content'])) for m in history) > BUDGET:\n    history.pop(1)"),
        {"known": "count(*) FILTER (WHERE input_context_used_pct IS NOT NULL)",
         "bad": "count(*) FILTER (WHERE input_context_used_pct >= 80)",
         "p95": "quantile_cont(input_context_used_pct, 0.95)", "max": "max(input_context_used_pct)",
         "signalled": SIGNALLED_GENERATION, "unjudged": UNSIGNALLED_GENERATION},
        bad="input_context_used_pct >= 80", advice=True,
    ),
)  # fmt: skip
