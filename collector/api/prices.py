"""The price list over HTTP: GET /api/v1/prices says which list prices new calls and how old it is, which versions
priced a window's calls, the models seen there with no price (and whether the list in use knows them now), and
whether a re-pricing would change anything (the Spend page's notice of a new list)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from collector.api.params import Params
from collector.api.state import AppState
from collector.query import prices
from collector.query.filters import Filters


def routes(state: AppState) -> list[Route]:
    async def price_list(request: Request) -> Response:
        filters = Filters.from_params(Params.of(request))

        def run(con: Any) -> dict[str, Any]:
            return {"versions": prices.versions(con, filters), "unpriced_models": prices.unpriced_models(con, filters)}

        found = await state.read(run)
        book, now = state.price_book, datetime.now(UTC)
        current = book.version
        for version in found["versions"]:
            version["current"] = version["price_version"] == current
        for model in found["unpriced_models"]:
            model["priced_now"] = book.knows(model["model"], model["provider"], now)
        stale = sum(version["requests"] for version in found["versions"] if not version["current"])
        newly_priced = sum(model["requests"] for model in found["unpriced_models"] if model["priced_now"])
        return JSONResponse(
            {
                "price_list": state.price_status(),
                **found,
                # Calls a re-pricing of the window would look at again: priced with another list, or unpriced by a
                # model the list in use knows now. The dry run says exactly what would change.
                "reprice_offered": {"other_version_requests": stale, "newly_priced_requests": newly_priced},
            }
        )

    return [Route("/api/v1/prices", price_list, methods=["GET"])]
