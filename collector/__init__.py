"""The llmledger collector: OTLP receiver, DuckDB store, alerts and the query API (issue 3)."""
