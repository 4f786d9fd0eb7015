"""Cost data for finance: the FOCUS 1.2 export (reconciled with OpenAI's bill) and chargeback by team."""
