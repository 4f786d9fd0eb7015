"""The collector's read-only SQL for the dashboard: run one SELECT, and the saved queries (listing needs the read
token; saving and deleting the admin token). A refused or cancelled query is the API's `ApiError`, whose `detail`
is the collector's own explanation."""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from typing import Any

import pandas as pd
import streamlit as st

from dashboard.data import client

RUN_PATH = "/api/v1/sql"
SAVED_PATH = "/api/v1/sql/saved"
SAVED_TTL = "10s"  # saving or deleting clears it; the TTL only covers changes made elsewhere
_INTEGER = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT")
_FLOAT = ("FLOAT", "DOUBLE")
_TEMPORAL = ("DATE", "TIMESTAMP", "TIMESTAMP WITH TIME ZONE", "TIMESTAMP_S", "TIMESTAMP_MS", "TIMESTAMP_NS")


def is_numeric(duckdb_type: str) -> bool:
    return duckdb_type in _INTEGER or duckdb_type in _FLOAT or duckdb_type.startswith("DECIMAL")


def is_temporal(duckdb_type: str) -> bool:
    return duckdb_type in _TEMPORAL


def is_text(duckdb_type: str) -> bool:
    return duckdb_type == "VARCHAR" or duckdb_type.startswith("ENUM")


@dataclass(frozen=True)
class Answer:
    """A query's result: rows as sent (decimals stay exact strings), DuckDB's type per column, and the limits."""

    rows: pd.DataFrame
    types: dict[str, str]
    truncated: bool
    max_rows: int
    elapsed_ms: float


def _unique(names: list[str]) -> list[str]:
    """Column names a table can show: a repeated name gets its position (`SELECT 1 AS a, 2 AS a`)."""
    seen: set[str] = set()
    unique = []
    for position, name in enumerate(names, 1):
        unique.append(name if name not in seen else f"{name} ({position})")
        seen.add(name)
    return unique


def _cell(value: Any) -> Any:
    return json.dumps(value) if isinstance(value, list | dict) else value


def run(api: str, token: str | None, sql: str) -> Answer:
    """Run one SELECT (never cached: Run means run it now)."""
    body = client.request("POST", api, token, RUN_PATH, body={"sql": sql, "format": "json"}).json()
    names = _unique([column["name"] for column in body["columns"]])
    types = {name: column["type"] for name, column in zip(names, body["columns"], strict=True)}
    rows = pd.DataFrame([[_cell(value) for value in row] for row in body["rows"]], columns=names, dtype="object")
    for name, kind in types.items():
        if kind in _INTEGER or kind in _FLOAT:
            with contextlib.suppress(OverflowError, TypeError, ValueError):  # a HUGEINT past 64 bits stays as sent
                rows[name] = pd.to_numeric(rows[name], errors="coerce").astype(
                    "Int64" if kind in _INTEGER else "Float64"
                )
    return Answer(rows, types, body["truncated"], body["max_rows"], body["elapsed_ms"])


@st.cache_data(ttl=SAVED_TTL, show_spinner=False, max_entries=20)
def saved(api: str, token: str | None) -> list[dict[str, Any]]:
    """Every saved query (id, name, sql, created_by, created_at), by name."""
    return client.request("GET", api, token, SAVED_PATH).json()["queries"]


def save(api: str, token: str | None, name: str, sql: str) -> dict[str, Any]:
    """Save `sql` under `name` (admin token); the collector checks it is one SELECT first."""
    try:
        return client.request("POST", api, token, SAVED_PATH, body={"name": name, "sql": sql}).json()
    finally:
        saved.clear()


def delete(api: str, token: str | None, query_id: int) -> None:
    try:
        client.request("DELETE", api, token, f"{SAVED_PATH}/{query_id}")
    finally:
        saved.clear()
