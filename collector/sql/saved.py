"""Saved queries: named SELECT statements analysts keep in the collector (`saved_queries`, migration 16).

A statement is checked by the sandbox's own parser (`sandbox.check`) before it is saved, so what the SQL page lists
is something the sandbox would run; it still runs through the sandbox, with its guards, every time.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from collector.sql.sandbox import SqlError, check
from collector.store.file import Store

FIELDS = frozenset({"name", "sql", "created_by"})
MAX_NAME = 200
MAX_SQL = 100_000
COLUMNS = ("id", "name", "sql", "created_by", "created_at")


class SavedQueryError(Exception):
    """A saved query refused: which field, and why (422; 409 when the name is taken)."""

    def __init__(self, field: str, message: str, status: int = 422) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message
        self.status = status


@dataclass(frozen=True)
class SavedQuery:
    name: str
    sql: str
    created_by: str | None = None


def parse_saved_query(payload: Any) -> SavedQuery:
    """A `SavedQuery` from the API's JSON, or `SavedQueryError` naming the first field that is wrong."""
    if not isinstance(payload, Mapping):
        raise SavedQueryError("body", 'must be a JSON object: {"name": "...", "sql": "SELECT ..."}')
    if unknown := set(payload) - FIELDS:
        raise SavedQueryError(sorted(unknown)[0], f"is not a saved query field ({', '.join(sorted(FIELDS))})")
    name = payload.get("name")
    if not isinstance(name, str) or not name.strip() or len(name.strip()) > MAX_NAME:
        raise SavedQueryError("name", f"is required: a name of at most {MAX_NAME} characters")
    sql = payload.get("sql")
    if not isinstance(sql, str) or len(sql) > MAX_SQL:
        raise SavedQueryError("sql", f"is required: one SELECT statement of at most {MAX_SQL:,} characters")
    try:
        check(sql)
    except SqlError as error:
        raise SavedQueryError("sql", error.message) from None
    created_by = payload.get("created_by")
    if created_by is not None and (not isinstance(created_by, str) or len(created_by) > MAX_NAME):
        raise SavedQueryError("created_by", f"must be a name of at most {MAX_NAME} characters")
    return SavedQuery(name.strip(), sql.strip(), (created_by or "").strip() or None)


class SavedQueries:
    """Saved queries in the collector's database (a lake keeps them in its PostgreSQL state, like alert rules)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def listed(self, con: Any) -> list[dict[str, Any]]:
        """Every saved query, by name."""
        rows = con.execute(f"SELECT {', '.join(COLUMNS)} FROM saved_queries ORDER BY name, id").fetchall()
        return [dict(zip(COLUMNS, row, strict=True)) | {"created_at": row[4].isoformat()} for row in rows]

    def create(self, query: SavedQuery, now: datetime) -> dict[str, Any]:
        """Save `query` under its name; a name already saved is refused (409) rather than overwritten."""
        with self.store.transaction() as con:
            if con.execute("SELECT 1 FROM saved_queries WHERE name = ?", [query.name]).fetchone():
                raise SavedQueryError("name", f"a query named {query.name!r} is already saved", 409)
            query_id = self.store.next_id(con, "saved_query_ids")
            con.execute(
                "INSERT INTO saved_queries (id, name, sql, created_by, created_at) VALUES (?, ?, ?, ?, ?)",
                [query_id, query.name, query.sql, query.created_by, now],
            )
        return {"id": query_id, "name": query.name, "sql": query.sql, "created_by": query.created_by,
                "created_at": now.isoformat()}  # fmt: skip

    def delete(self, query_id: int) -> bool:
        with self.store.transaction() as con:
            (found,) = con.execute("DELETE FROM saved_queries WHERE id = ?", [query_id]).fetchone()
        return bool(found)
