"""Helpers that ship with llmledger for tests and the demo: fake OpenAI servers, local-server waiting, OTLP values."""
