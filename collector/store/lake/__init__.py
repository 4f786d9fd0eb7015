"""The same store on a DuckLake shared by several collectors: connecting, locks, schema and compaction."""
