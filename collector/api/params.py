"""Reading a request's inputs, one way for every router: its query parameters (`Params`) and its JSON body."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from starlette.requests import Request

from collector.api.errors import BadBodyError
from collector.query.filters import QueryError, parse_time


class Params(dict[str, list[str]]):
    """A request's query parameters, every value of each name in order (a repeated filter means "any of");
    a single-valued parameter takes its last value."""

    @classmethod
    def of(cls, request: Request) -> Params:
        params = cls()
        for key, value in request.query_params.multi_items():
            params.setdefault(key, []).append(value)
        return params

    def single(self, name: str, default: Any) -> Any:
        """The last value, even empty; `default` when the parameter is absent."""
        values = self.get(name)
        return values[-1] if values else default

    def optional(self, name: str) -> str | None:
        """The last value; None when it is absent or empty."""
        return self.single(name, None) or None

    def required(self, name: str) -> str:
        value = self.optional(name)
        if value is None:
            raise QueryError(name, "is required")
        return value

    def whole_number(self, name: str, default: int) -> int:
        text = self.single(name, str(default))
        if not (text.isascii() and text.isdigit()):
            raise QueryError(name, f"{text!r} is not a whole number")
        return int(text)

    def boolean(self, name: str) -> bool:
        text = str(self.single(name, "false")).lower()
        if text not in ("true", "false", "1", "0"):
            raise QueryError(name, f"{text!r} is not true or false")
        return text in ("true", "1")

    def time(self, name: str) -> datetime | None:
        """An RFC 3339 time or a date (UTC when no offset); None when absent or empty."""
        text = self.optional(name)
        return parse_time(name, text) if text else None

    def times(self) -> tuple[datetime | None, datetime | None]:
        """`from` and `to`, each optional; when both are given, `from` comes first."""
        start, end = self.time("from"), self.time("to")
        if start and end and start >= end:
            raise QueryError("from", "must be before to")
        return start, end


async def json_body(request: Request) -> Any:
    """The request's body parsed as JSON, or `BadBodyError` (400)."""
    try:
        return await request.json()
    except ValueError:
        raise BadBodyError("body", "body is not valid JSON") from None
