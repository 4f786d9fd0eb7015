"""The collector's digest API for the dashboard: digests (list, create, update, delete), a draft's preview, "send
now" and a digest's deliveries. Reads are cached for a few seconds; writes clear them."""

from __future__ import annotations

import base64
from typing import Any

import httpx2
import streamlit as st

from dashboard.data import client
from dashboard.data.client import ApiError

PATH = "/api/v1/digests"
READ_TTL = 5  # seconds


class DigestRejectedError(ApiError):
    """The collector refused a digest (422): which field, and why, as the API said it."""

    def __init__(self, message: str, field: str | None) -> None:
        super().__init__(message, 422, field)
        self.field = field


def _request(method: str, api: str, token: str | None, path: str, body: Any = None) -> httpx2.Response:
    try:
        return client.request(method, api, token, path, [], body)
    except ApiError as error:
        if error.status == 422:
            raise DigestRejectedError(error.detail, error.parameter) from None
        raise


@st.cache_data(ttl=READ_TTL, show_spinner=False, max_entries=20)
def digests(api: str, token: str | None) -> list[dict[str, Any]]:
    """Every digest (channel secrets masked), with the last period sent and when the next report goes."""
    return _request("GET", api, token, PATH).json()["digests"]


@st.cache_data(ttl=READ_TTL, show_spinner=False, max_entries=20)
def deliveries(api: str, token: str | None, digest_id: int) -> list[dict[str, Any]]:
    """A digest's sends, newest first, each with its delivery attempts (channel hosts only)."""
    return _request("GET", api, token, f"{PATH}/{digest_id}/deliveries").json()["deliveries"]


def clear() -> None:
    digests.clear()
    deliveries.clear()


def create(api: str, token: str | None, body: dict[str, Any]) -> int:
    try:
        return int(_request("POST", api, token, PATH, body).json()["id"])
    finally:
        clear()


def update(api: str, token: str | None, digest_id: int, body: dict[str, Any]) -> None:
    try:
        _request("PUT", api, token, f"{PATH}/{digest_id}", body)
    finally:
        clear()


def delete(api: str, token: str | None, digest_id: int) -> None:
    try:
        _request("DELETE", api, token, f"{PATH}/{digest_id}")
    finally:
        clear()


def send_now(api: str, token: str | None, digest_id: int) -> dict[str, Any]:
    """Ask the collector to send the last complete period's report now: its period and how many channels."""
    try:
        return _request("POST", api, token, f"{PATH}/{digest_id}/send").json()
    finally:
        clear()


def preview(api: str, token: str | None, body: dict[str, Any]) -> tuple[str, bytes, str]:
    """A draft's report, not sent: its text, its chart (PNG) and the chart's description."""
    answer = _request("POST", api, token, f"{PATH}/preview", body).json()
    return answer["text"], base64.b64decode(answer["png_base64"]), answer["png_alt"]


def editable_body(digest: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """A digest as read, ready to PUT back (masked secrets stand for the stored ones)."""
    fields = ("name", "schedule", "send_hour", "filters", "channels", "enabled")
    return {**{name: digest[name] for name in fields}, **changes}
