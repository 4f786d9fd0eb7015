"""Reads about prices: which price versions the calls of a window were priced with, and the models seen in traffic
that have no price (what the Spend page's price-list notice shows)."""

from __future__ import annotations

from typing import Any

from collector.query.filters import PROVIDER, UNPRICED, Filters, jsonable

MODEL = "coalesce(response_model, request_model)"
MAX_MODELS = 100


def versions(con: Any, filters: Filters) -> list[dict[str, Any]]:
    """Calls and cost per price version the collector priced them with (the provider's own bills have none)."""
    where, params = filters.where()
    where += (" AND " if where else " WHERE ") + "price_version IS NOT NULL"
    rows = con.execute(
        "SELECT price_version, count(*) AS requests, sum(cost_usd)::DECIMAL(38,9) AS cost_usd "
        f"FROM llm_calls{where} GROUP BY price_version ORDER BY requests DESC, price_version",
        params,
    ).fetchall()
    return [{"price_version": v, "requests": n, "cost_usd": jsonable(cost)} for v, n, cost in rows]


def unpriced_models(con: Any, filters: Filters) -> list[dict[str, Any]]:
    """Models (with their provider) whose calls in the window have no price, with their call and token counts."""
    where, params = filters.where()
    where += (" AND " if where else " WHERE ") + f"({UNPRICED})"
    rows = con.execute(
        f"SELECT {MODEL} AS model, {PROVIDER} AS provider, count(*) AS requests, "
        "coalesce(sum(input_tokens), 0)::BIGINT, coalesce(sum(output_tokens), 0)::BIGINT, max(start_time) "
        f"FROM llm_calls{where} GROUP BY ALL ORDER BY requests DESC, model LIMIT {MAX_MODELS}",
        params,
    ).fetchall()
    return [
        {"model": model, "provider": provider, "requests": requests, "input_tokens": given, "output_tokens": out,
         "last_seen": jsonable(last)}
        for model, provider, requests, given, out, last in rows
    ]  # fmt: skip
