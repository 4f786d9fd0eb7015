"""The DuckDB store: schema, numbered migrations, the daily rollup, retention, backup and restore."""
