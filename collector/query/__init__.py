"""Reading for the query API: filters and time windows, summaries and series, breakdowns, exports."""
