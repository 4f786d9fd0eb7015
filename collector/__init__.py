"""The llmledger collector: receives OTLP, stores one exact row per LLM call, alerts, reconciles, serves queries."""
