"""POST /api/v1/sql: one read-only SELECT over views of the data (collector/sql/sandbox.py), as JSON or CSV; and the
saved queries (collector/sql/saved.py): listed with the read token, saved and deleted with the admin token."""

from __future__ import annotations

import csv
import io
import math
import uuid
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from collector.api.errors import BadBodyError, NotFoundError
from collector.api.params import json_body
from collector.api.state import AppState
from collector.query.exports import neutralise
from collector.query.filters import jsonable
from collector.sql.sandbox import Sandbox, SqlError
from collector.sql.saved import SavedQueries, parse_saved_query

FORMATS = ("json", "csv")


def routes(state: AppState) -> list[Route]:
    sandbox = Sandbox(state.store.reader)

    async def run_sql(request: Request) -> Response:
        body = await json_body(request)
        if not isinstance(body, dict) or not isinstance(body.get("sql"), str):
            raise BadBodyError("sql", 'send {"sql": "SELECT ...", "format": "json" | "csv"}')
        file_format = body.get("format", "json")
        if file_format not in FORMATS:
            raise BadBodyError("format", f"{file_format!r} is not one of {', '.join(FORMATS)}")
        try:
            result = await run_in_threadpool(sandbox.run, body["sql"])
        except SqlError as error:
            return JSONResponse({"error": error.message, "field": "sql"}, error.status)
        if file_format == "csv":
            buffer = io.StringIO()
            writer = csv.writer(buffer, lineterminator="\r\n")
            writer.writerow([column["name"] for column in result.columns])
            writer.writerows([neutralise(value) for value in row] for row in result.rows)
            return Response(buffer.getvalue(), media_type="text/csv; charset=utf-8")
        return JSONResponse(
            {
                "columns": result.columns,
                "rows": [[_json_value(value) for value in row] for row in result.rows],
                "row_count": len(result.rows),
                "truncated": result.truncated,
                "max_rows": sandbox.max_rows,
                "elapsed_ms": round(result.elapsed_ms, 1),
            }
        )

    saved = SavedQueries(state.store)

    async def list_saved(request: Request) -> Response:
        return JSONResponse({"queries": await state.read(saved.listed)})

    async def save(request: Request) -> Response:
        query = parse_saved_query(await json_body(request))
        return JSONResponse(await run_in_threadpool(saved.create, query, datetime.now(UTC)), 201)

    async def delete_saved(request: Request) -> Response:
        query_id = request.path_params["query_id"]
        if not await run_in_threadpool(saved.delete, query_id):
            raise NotFoundError(f"no saved query {query_id}")
        return Response(status_code=204)

    return [
        Route("/api/v1/sql", run_sql, methods=["POST"]),
        Route("/api/v1/sql/saved", list_saved, methods=["GET"]),
        Route("/api/v1/sql/saved", save, methods=["POST"]),
        Route("/api/v1/sql/saved/{query_id:int}", delete_saved, methods=["DELETE"]),
    ]


def _json_value(value: Any) -> Any:
    """Any value a SELECT can return, as JSON: DuckDB's dates, times, intervals, UUIDs, blobs, lists and structs too
    (JSON has none of them, nor NaN or infinities, which become the strings "NaN", "Infinity", "-Infinity")."""
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, datetime):
        return jsonable(value)
    if isinstance(value, date | time):
        return value.isoformat()
    if isinstance(value, timedelta | uuid.UUID):
        return str(value)
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, list | tuple):
        return [_json_value(item) for item in value]
    if isinstance(value, dict):
        return {str(key): _json_value(item) for key, item in value.items()}
    return jsonable(value)
