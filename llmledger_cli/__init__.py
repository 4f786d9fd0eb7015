"""The `llmledger` command: every subcommand, `up` and `demo`, above the wrapper, the collector and the dashboard."""
