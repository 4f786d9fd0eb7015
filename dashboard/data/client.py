"""The dashboard's only data access: the collector's HTTP query API (the collector owns the DuckDB file)."""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import urlencode

import httpx2
import pandas as pd
import streamlit as st

from llmledger.credentials import client_token

DEFAULT_API_URL = "http://127.0.0.1:4318"
TIMEOUT_SECONDS = 30
TTL = "60s"
OPTIONS_TTL = "300s"
EMPTY_TTL = "10s"  # a new user's first calls should replace the empty state quickly

Params = tuple[tuple[str, str], ...]
# llm_calls columns typed for display; the rest (ids, names, cost_usd as exact decimal text) stay as sent.
INTEGER_COLUMNS = (
    "http_status",
    "attempts",
    "input_tokens",
    "cached_input_tokens",
    "cache_write_tokens",
    "output_tokens",
    "reasoning_tokens",
    "ratelimit_limit_requests",
    "ratelimit_remaining_requests",
    "ratelimit_limit_tokens",
    "ratelimit_remaining_tokens",
    "max_tokens",
    "client_max_retries",
)
FLOAT_COLUMNS = ("duration_ms", "ttft_ms", "temperature", "client_timeout_s")


class ApiError(Exception):
    """The collector could not answer: unreachable, refused the token, or rejected a parameter."""

    def __init__(
        self, message: str, status: int | None = None, parameter: str | None = None, detail: str | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.parameter = parameter
        self.detail = detail or message  # the collector's own words, without our preamble


class EndpointMissingError(ApiError):
    """The collector answered 404: it is older than this dashboard."""


def api_url() -> str:
    """The collector's base URL, from LLMLEDGER_API_URL."""
    return (os.environ.get("LLMLEDGER_API_URL") or DEFAULT_API_URL).rstrip("/")


def read_token() -> str | None:
    """The token the dashboard sends: the admin token when set (alert rules need it), else the read token;
    each from LLMLEDGER_{ADMIN,READ}_TOKEN or the file named by the same variable with _FILE."""
    return client_token("admin", "read")


def request(
    method: str,
    api: str,
    token: str | None,
    path: str,
    params: Params | list[tuple[str, str]] = (),
    body: Any = None,
) -> httpx2.Response:
    """One call to the collector; anything but 2xx becomes an `ApiError` carrying the field or parameter the
    collector named (a 404 without the collector's own error body means the endpoint itself is missing)."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        response = httpx2.request(
            method, f"{api}{path}", params=list(params), json=body, headers=headers, timeout=TIMEOUT_SECONDS
        )
    except httpx2.TransportError as error:
        raise ApiError(f"Cannot reach the collector at {api} ({error.__class__.__name__}: {error}).") from None
    if 200 <= response.status_code < 300:
        return response
    if response.status_code in (401, 403):
        raise ApiError(
            f"The collector refused the dashboard's token ({response.status_code}): {_error_text(response)} "
            "Set LLMLEDGER_READ_TOKEN (or LLMLEDGER_ADMIN_TOKEN, needed to change alert rules), or the same "
            "name with _FILE, to a token the collector accepts.",
            response.status_code,
        )
    try:
        answer = response.json()
    except ValueError:
        answer = None
    if not isinstance(answer, dict) or "error" not in answer:
        if response.status_code == 404:
            raise EndpointMissingError(
                f"The collector at {api} has no {path}: it may be older than this dashboard.", 404
            )
        answer = {"error": response.text}
    named = answer.get("parameter") or answer.get("field")
    where = f" ({named})" if named else ""
    message = f"The collector answered {response.status_code}{where}: {answer['error']}"
    raise ApiError(message, response.status_code, named, answer["error"])


def _error_text(response: httpx2.Response) -> str:
    try:
        return str(response.json()["error"])
    except (ValueError, KeyError, TypeError):
        return ""


def _get(api: str, token: str | None, path: str, params: Params | list[tuple[str, str]]) -> httpx2.Response:
    return request("GET", api, token, path, params)


def _json(api: str, token: str | None, path: str, params: Params | list[tuple[str, str]]) -> dict[str, Any]:
    return _get(api, token, path, params).json()


@st.cache_data(ttl=EMPTY_TTL, show_spinner=False, max_entries=10)
def has_calls(api: str, token: str | None) -> bool:
    """Whether the collector holds any call at all (one newest-first row: cheaper than an all-time summary)."""
    return bool(_json(api, token, "/api/v1/calls", [("limit", "1")])["calls"])


@st.cache_data(ttl=TTL, show_spinner=False, max_entries=500)
def summary(api: str, token: str | None, params: Params, fields: tuple[str, ...] = ()) -> dict[str, Any]:
    """`/api/v1/summary` as the API sends it (decimals stay strings): every field, or only `fields` (cheaper: no
    percentiles unless asked; a collector older than `fields` sends them all)."""
    return _json(api, token, "/api/v1/summary", [*params, *([("fields", ",".join(fields))] if fields else [])])


@st.cache_data(ttl=TTL, show_spinner=False, max_entries=500)
def timeseries(
    api: str, token: str | None, params: Params, metric: str, bucket: str = "auto", group_by: str | None = None
) -> tuple[str, pd.DataFrame]:
    """`/api/v1/timeseries`: the bucket chosen and a frame of time (UTC), group, value (float, NaN when empty)."""
    query = [*params, ("metric", metric), ("bucket", bucket)]
    if group_by:
        query.append(("group_by", group_by))
    body = _json(api, token, "/api/v1/timeseries", query)
    frame = pd.DataFrame(body["points"], columns=["time", "group", "value"])
    frame["time"] = pd.to_datetime(frame["time"], utc=True, format="ISO8601")
    frame["value"] = pd.to_numeric(frame["value"], errors="coerce").astype("float64")
    frame["group"] = frame["group"].astype("object")
    return body["bucket"], frame


@st.cache_data(ttl=TTL, show_spinner=False, max_entries=500)
def breakdown(api: str, token: str | None, params: Params, group_by: str, limit: int = 20) -> pd.DataFrame:
    """`/api/v1/breakdown`: one row per group, top spenders first; every field as the API sent it."""
    body = _json(api, token, "/api/v1/breakdown", [*params, ("group_by", group_by), ("limit", str(limit))])
    return pd.DataFrame(body["groups"], dtype="object")


@st.cache_data(ttl=OPTIONS_TTL, show_spinner=False, max_entries=100)
def group_values(api: str, token: str | None, group_by: str, since: str, where: Params = ()) -> list[str]:
    """The values a filter can take (the calls' since a date, narrowed by the filters `where`), for the sidebar's
    choices; from a breakdown when the collector is older than `/api/v1/values`."""
    query = [("from", since), *where, ("group_by", group_by), ("limit", "1000")]
    try:
        found = _json(api, token, "/api/v1/values", query)["values"]
    except EndpointMissingError:
        found = [group["group"] for group in _json(api, token, "/api/v1/breakdown", query)["groups"]]
    return sorted(str(value) for value in found if value not in (None, ""))


@st.cache_data(ttl=TTL, show_spinner=False, max_entries=200)
def latency_histogram(api: str, token: str | None, params: Params, metric: str, bins: int = 30) -> pd.DataFrame:
    """`/api/v1/latency_histogram`: from_ms, to_ms, count per bin."""
    body = _json(api, token, "/api/v1/latency_histogram", [*params, ("metric", metric), ("bins", str(bins))])
    return pd.DataFrame(body["bins"], columns=["from_ms", "to_ms", "count"])


@st.cache_data(ttl=TTL, show_spinner=False, max_entries=200)
def calls(
    api: str, token: str | None, params: Params, limit: int = 100, cursor: str | None = None, order: str = "newest"
) -> dict[str, Any]:
    """`/api/v1/calls` (newest first, or `order="slowest"`): {"calls": DataFrame of rows as sent, "next_cursor"}."""
    query = [*params, ("limit", str(limit)), ("order", order)]
    if cursor:
        query.append(("cursor", cursor))
    body = _json(api, token, "/api/v1/calls", query)
    rows = pd.DataFrame(body["calls"], dtype="object")
    for name in INTEGER_COLUMNS:
        if name in rows:
            rows[name] = pd.to_numeric(rows[name]).astype("Int64")
    for name in FLOAT_COLUMNS:
        if name in rows:
            rows[name] = pd.to_numeric(rows[name]).astype("Float64")
    return {"calls": rows, "next_cursor": body.get("next_cursor")}


def export_query(params: Params, kind: str, period: str | None = None) -> list[tuple[str, str]]:
    """The parameters of `/api/v1/export.csv` for a window, filters, kind and (finance only) period."""
    return [("kind", kind), *([("period", period)] if period else []), *params]


def export_url(api: str, params: Params, kind: str, period: str | None = None) -> str:
    """The full export URL, for scripts."""
    return f"{api}/api/v1/export.csv?{urlencode(export_query(params, kind, period))}"


def export_csv(api: str, token: str | None, params: Params, kind: str, period: str | None = None) -> bytes:
    """`/api/v1/export.csv` as bytes. Not cached: exports can be large and are fetched only when asked for."""
    return _get(api, token, "/api/v1/export.csv", export_query(params, kind, period)).content
