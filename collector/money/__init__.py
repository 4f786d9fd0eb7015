"""Money: the price book every stored cost comes from, negotiated overrides, and re-pricing."""
