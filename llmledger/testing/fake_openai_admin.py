"""A small fake of OpenAI's organization Costs and Usage APIs on loopback, for reconciliation tests.

It serves `GET /v1/organization/costs` and `GET /v1/organization/usage/completions` in the real shapes: a page of
time buckets (every bucket in the range, empty ones included), results grouped by the requested `group_by` fields
(null where not grouped, or where the item has no value), amounts as JSON floats, pagination by `limit` buckets with
`has_more` and an opaque `next_page` cursor honoured through `page`. `refuse` answers like OpenAI does for an admin
key without the `api.usage.read` scope; `refuse_echoing_key` like OpenAI does for a key it does not know, quoting it.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

COSTS_PATH = "/v1/organization/costs"
USAGE_PATH = "/v1/organization/usage/completions"
WIDTHS = {"1m": 60, "1h": 3600, "1d": 86400}
# bucket_width → (default limit, largest limit), as the API documents them.
LIMITS = {"costs": {"1d": (7, 180)}, "usage": {"1m": (60, 1440), "1h": (24, 168), "1d": (7, 31)}}
COST_GROUPS = ("project_id", "line_item")
USAGE_GROUPS = ("project_id", "model", "batch", "service_tier")
USAGE_COUNTS = (
    "input_tokens",
    "output_tokens",
    "input_cached_tokens",
    "input_audio_tokens",
    "output_audio_tokens",
    "num_model_requests",
)
MISSING_SCOPE = (
    "You have insufficient permissions for this operation. Missing scopes: api.usage.read. Check that you have the "
    "correct role in your organization (Reader, Writer, Owner) and project (Member, Owner), and if you're using a "
    "restricted API key, that it has the necessary scopes."
)


@dataclass
class CostItem:
    """Spend OpenAI billed on a UTC day (`amount` in USD, sent as a JSON float)."""

    day: date
    amount: Decimal | str
    line_item: str | None = None
    project_id: str | None = None
    currency: str = "usd"


@dataclass
class UsageItem:
    """Completions usage in the hour starting at `hour` (UTC)."""

    hour: datetime
    model: str | None
    input_tokens: int = 0
    output_tokens: int = 0
    num_model_requests: int = 0
    input_cached_tokens: int = 0
    input_audio_tokens: int = 0
    output_audio_tokens: int = 0
    project_id: str | None = None
    batch: bool | None = False
    service_tier: str | None = "default"


@dataclass
class ReceivedRequest:
    path: str
    query: dict[str, list[str]]
    authorization: str | None


class FakeOpenAIAdmin:
    """`with FakeOpenAIAdmin() as fake: OpenAI(base_url=fake.base_url, admin_api_key="sk-admin-...")`."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.costs: list[CostItem] = []
        self.usage: list[UsageItem] = []
        self.page_size: dict[str, int] = {}  # "costs"/"usage" → fewer buckets per page than `limit` asks
        self.refuse: int | None = None  # 401 or 403, as for a key without api.usage.read
        self.refuse_echoing_key = False  # 401 quoting the key, as for a key OpenAI does not know
        self.requests: list[ReceivedRequest] = []
        self._lock = threading.Lock()
        self._server = _QuietServer((host, port), _handler_for(self))
        self._server.daemon_threads = True

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/v1"

    def start(self) -> FakeOpenAIAdmin:
        threading.Thread(target=self._server.serve_forever, name="fake-openai-admin", daemon=True).start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> FakeOpenAIAdmin:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def reset(self) -> None:
        with self._lock:
            self.costs, self.usage, self.requests, self.page_size = [], [], [], {}
            self.refuse, self.refuse_echoing_key = None, False

    def pages(self, path: str) -> list[ReceivedRequest]:
        """The requests received for one endpoint, in order."""
        with self._lock:
            return [request for request in self.requests if request.path == path]

    def answer(self, path: str, query: dict[str, list[str]], authorization: str | None) -> tuple[int, str]:
        """(status, JSON body) for one GET."""
        with self._lock:
            self.requests.append(ReceivedRequest(path, query, authorization))
            kind = {COSTS_PATH: "costs", USAGE_PATH: "usage"}.get(path)
            if kind is None:
                return _error(404, f"Invalid URL (GET {path})", "invalid_request_error")
            scheme, _, key = (authorization or "").partition(" ")
            if scheme != "Bearer" or not key:
                return _error(401, "You didn't provide an API key.", "invalid_request_error")
            if self.refuse_echoing_key:
                message = f"Incorrect API key provided: {key}. You can find your API key at platform.openai.com."
                return _error(401, message, "invalid_request_error", "invalid_api_key")
            if self.refuse is not None:
                return _error(self.refuse, MISSING_SCOPE, "invalid_request_error")
            try:
                return 200, self._page(kind, query)
            except ValueError as exc:
                return _error(400, str(exc), "invalid_request_error")

    def _page(self, kind: str, query: dict[str, list[str]]) -> str:
        def one(name: str, default: str | None = None) -> str | None:
            values = query.get(name) or query.get(f"{name}[]")
            return values[-1] if values else default

        start_text = one("start_time")
        if start_text is None:
            raise ValueError("start_time is required")
        width_name = one("bucket_width", "1d") or "1d"
        if width_name not in LIMITS[kind]:
            raise ValueError(f"Invalid bucket_width: {width_name}")
        default_limit, max_limit = LIMITS[kind][width_name]
        limit = int(one("limit", str(default_limit)) or default_limit)
        if not 1 <= limit <= max_limit:
            raise ValueError(f"limit must be between 1 and {max_limit} for bucket_width {width_name}")
        width = WIDTHS[width_name]
        start = int(start_text) // width * width
        end = int(one("end_time") or time.time())
        groups = set(query.get("group_by", []) + query.get("group_by[]", []))
        allowed = COST_GROUPS if kind == "costs" else USAGE_GROUPS
        if groups - set(allowed):
            raise ValueError(f"Invalid group_by: {sorted(groups - set(allowed))[0]}")
        starts = list(range(start, end, width))
        first = int(base64.urlsafe_b64decode(page.removeprefix("page_")).decode()) if (page := one("page")) else 0
        size = min(limit, self.page_size.get(kind, limit))
        shown = starts[first : first + size]
        buckets = [
            {
                "object": "bucket",
                "start_time": bucket_start,
                "end_time": bucket_start + width,
                "results": self._results(kind, bucket_start, bucket_start + width, groups),
            }
            for bucket_start in shown
        ]
        has_more = first + size < len(starts)
        cursor = "page_" + base64.urlsafe_b64encode(str(first + size).encode()).decode() if has_more else None
        return _dumps({"object": "page", "data": buckets, "has_more": has_more, "next_page": cursor})

    def _results(self, kind: str, start: int, end: int, groups: set[str]) -> list[dict[str, Any]]:
        """One bucket's results: items in [start, end) summed per value of the requested group fields."""
        grouped: dict[tuple[Any, ...], dict[str, Any]] = {}
        if kind == "costs":
            for item in self.costs:
                moment = datetime(item.day.year, item.day.month, item.day.day, tzinfo=UTC).timestamp()
                if start <= moment < end:
                    key = tuple(getattr(item, name) if name in groups else None for name in COST_GROUPS)
                    result = grouped.setdefault((*key, item.currency), _cost_result(key, item.currency))
                    result["amount"]["value"] += Decimal(item.amount)
            return list(grouped.values())
        for item in self.usage:
            if start <= item.hour.timestamp() < end:
                key = tuple(getattr(item, name) if name in groups else None for name in USAGE_GROUPS)
                result = grouped.setdefault(key, _usage_result(key))
                for name in USAGE_COUNTS:
                    result[name] += getattr(item, name)
        return list(grouped.values())


def _cost_result(key: tuple[Any, ...], currency: str) -> dict[str, Any]:
    return {
        "object": "organization.costs.result",
        "amount": {"value": Decimal(0), "currency": currency},
        **dict(zip(COST_GROUPS, key, strict=True)),
    }


def _usage_result(key: tuple[Any, ...]) -> dict[str, Any]:
    return {
        "object": "organization.usage.completions.result",
        **dict.fromkeys(USAGE_COUNTS, 0),
        "user_id": None,
        "api_key_id": None,
        **dict(zip(USAGE_GROUPS, key, strict=True)),
    }


def _error(status: int, message: str, kind: str, code: str | None = None) -> tuple[int, str]:
    return status, json.dumps({"error": {"message": message, "type": kind, "param": None, "code": code}})


def _dumps(body: Any) -> str:
    """JSON with every Decimal written as a JSON float literal of exactly its digits (as the API writes floats)."""
    numbers: list[str] = []

    def number(value: Any) -> str:
        if not isinstance(value, Decimal):
            raise TypeError(f"{type(value).__name__} is not JSON serializable")
        text = format(value, "f")
        numbers.append(text if "." in text else text + ".0")
        return f"@@decimal{len(numbers) - 1}@@"

    text = json.dumps(body, default=number)
    for index, digits in enumerate(numbers):
        text = text.replace(f'"@@decimal{index}@@"', digits, 1)
    return text


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        pass


def _handler_for(fake: FakeOpenAIAdmin) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's name
            pass

        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            status, body = fake.answer(parts.path, parse_qs(parts.query), self.headers.get("Authorization"))
            data = body.encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("x-request-id", f"req_admin_{len(fake.requests)}")
            self.end_headers()
            self.wfile.write(data)

    return Handler
