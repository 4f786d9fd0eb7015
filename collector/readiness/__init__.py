"""The OpenAI production checklist, scored from a service's own calls."""
