"""OpenAI's own bill: pulling its Costs and Usage APIs, and comparing them with what we counted."""
