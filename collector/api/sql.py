"""POST /api/v1/sql: one read-only SELECT over views of the data (collector/sql/sandbox.py), as JSON or CSV."""

from __future__ import annotations

import csv
import io

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from collector.api.errors import BadBodyError
from collector.api.params import json_body
from collector.api.state import AppState
from collector.query.exports import neutralise
from collector.query.filters import jsonable
from collector.sql.sandbox import Sandbox, SqlError

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
                "rows": [[jsonable(value) for value in row] for row in result.rows],
                "row_count": len(result.rows),
                "truncated": result.truncated,
                "max_rows": sandbox.max_rows,
                "elapsed_ms": round(result.elapsed_ms, 1),
            }
        )

    return [Route("/api/v1/sql", run_sql, methods=["POST"])]
