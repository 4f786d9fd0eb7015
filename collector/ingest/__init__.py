"""From decoded spans to committed rows: normalize every dialect, validate, scrub secrets, price, group-commit."""
