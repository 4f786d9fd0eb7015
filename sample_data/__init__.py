"""The demo's sample data: 90 days of realistic OpenAI traffic as OTLP, and the seeded generator that made it.

`demo-90d.otlp.gz` holds the spans our wrapper would have emitted for five apps (support-bot, search-api,
doc-summarizer, sales-assistant, and hr-helpdesk on Azure OpenAI) over the 90 days ending 2026-01-01T00:00:00Z:
eight text models with real price differences (one fine-tuned model genai-prices cannot price), cached input,
reasoning tokens, streams with time to first token; a few % of calls on the other routes (gpt-image-1 and dall-e-3
images, tts-1 speech, whisper-1 transcriptions, a Responses feature using web search, free moderations) and through
other providers (Azure OpenAI, OpenRouter with its own reported cost); a few hundred hashed end users, daily and
weekly cycles, a gpt-4o-mini rate-limit storm (2025-12-29), an hour-long OpenAI outage with 5xx errors (2025-12-18)
and a runaway feature's cost spike (2025-11-12/14).
`python sample_data/generate.py --out FILE [--seed 2026] [--calls-per-day N] [--days 90]` rebuilds it byte for byte,
or makes more; `llmledger load FILE` (`llmledger_cli.load`) replays it into a collector.

File format (`*.otlp.gz`)
    A gzip stream holding a sequence of records, each a 4-byte big-endian unsigned length followed by that many
    bytes of one serialised OTLP `ExportTraceServiceRequest`
    (`opentelemetry.proto.collector.trace.v1.trace_service_pb2`), about 500 spans per message, in time order.
    Nothing else: no header, no trailer. Each message is exactly what an OTLP/HTTP exporter would POST to
    `/v1/traces` as `application/x-protobuf`.
"""

from __future__ import annotations

from pathlib import Path

DEMO_FILE = Path(__file__).with_name("demo-90d.otlp.gz")
