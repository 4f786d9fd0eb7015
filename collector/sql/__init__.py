"""Read-only SQL for analysts: one SELECT over views of the data, in a sandboxed DuckDB of its own."""
