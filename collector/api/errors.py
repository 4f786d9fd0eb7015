"""Every error the HTTP API answers with: the errors routers raise, and their status codes and bodies (one place)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping

from google.rpc.status_pb2 import Status
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from collector.alerts.rules import RuleError
from collector.api.auth import AuthError
from collector.digests.spec import DigestError
from collector.query.filters import QueryError
from collector.receive import otlp
from collector.sql.saved import SavedQueryError
from collector.store.backup import BackupError

RETRY_AFTER_SECONDS = "1"

# HTTP status → google.rpc.Code for OTLP error bodies.
_GRPC_CODES = {400: 3, 413: 3, 415: 3, 503: 14}


class BadBodyError(Exception):
    """A request body that can't be used (not JSON, a required field missing): 400 naming the field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class InvalidFieldError(Exception):
    """A field of a request body whose value is wrong: 422 naming it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class NotFoundError(Exception):
    """What the request names doesn't exist: 404."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ConflictError(Exception):
    """The collector isn't set up for this request (e.g. no OpenAI admin key): 409."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class OtlpRefusedError(Exception):
    """An OTLP request refused, answered as OTLP says: a google.rpc.Status in the request's own encoding (`kind`),
    or JSON when the content type itself was refused."""

    def __init__(self, error: otlp.OtlpError, kind: str | None) -> None:
        super().__init__(error.message)
        self.status = error.status
        self.message = error.message
        self.kind = kind


async def _query_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, QueryError)
    return JSONResponse({"error": error.message, "parameter": error.parameter}, 400)


async def _field_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, RuleError | DigestError | InvalidFieldError | BadBodyError)
    return JSONResponse({"error": error.message, "field": error.field}, 400 if isinstance(error, BadBodyError) else 422)


async def _saved_query_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, SavedQueryError)
    return JSONResponse({"error": error.message, "field": error.field}, error.status)


async def _backup_error(request: Request, error: Exception) -> Response:
    return JSONResponse({"error": str(error), "field": "to"}, 400)


async def _not_found(request: Request, error: Exception) -> Response:
    assert isinstance(error, NotFoundError)
    return JSONResponse({"error": error.message}, 404)


async def _conflict(request: Request, error: Exception) -> Response:
    assert isinstance(error, ConflictError)
    return JSONResponse({"error": error.message}, 409)


async def _otlp_refused(request: Request, error: Exception) -> Response:
    assert isinstance(error, OtlpRefusedError)
    headers = {"Retry-After": RETRY_AFTER_SECONDS} if error.status == 503 else None
    if error.kind is None:
        return JSONResponse({"code": error.status, "message": error.message}, error.status, headers=headers)
    status = Status(code=_GRPC_CODES.get(error.status, 3), message=error.message)
    return Response(otlp.serialize(status, error.kind), error.status, headers=headers, media_type=error.kind)


def unauthorized(error: AuthError) -> Response:
    """The answer to a request without the token its endpoint needs (sent by the authorize middleware, which runs
    outside the exception handlers)."""
    headers = {"WWW-Authenticate": "Bearer"} if error.status == 401 else None
    return JSONResponse({"error": error.message}, error.status, headers=headers)


# Starlette's `exception_handlers`: the first class in a raised error's MRO found here answers it.
EXCEPTION_HANDLERS: Mapping[type[Exception], Callable[[Request, Exception], Awaitable[Response]]] = {
    QueryError: _query_error,
    RuleError: _field_error,
    DigestError: _field_error,
    InvalidFieldError: _field_error,
    BadBodyError: _field_error,
    SavedQueryError: _saved_query_error,
    BackupError: _backup_error,
    NotFoundError: _not_found,
    ConflictError: _conflict,
    OtlpRefusedError: _otlp_refused,
}
