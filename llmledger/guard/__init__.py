"""The guard: budgets enforced, circuits broken and rate limits paced inside the app, before a request leaves the
process (docs/architecture.md, The guard). Opt-in: `instrument(guard=True)` or `guard=GuardSettings(...)`."""
