"""What every page shares: number formats, the empty state, error messages and the auto-refreshing body."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

import streamlit as st

from dashboard.data import client, fetch
from dashboard.parts import filters

NO_DATA = "—"
SNIPPET = """\
import llmledger, openai
llmledger.configure(service_name="my-app", endpoint="{endpoint}")  # spans → this collector
llmledger.instrument()  # every OpenAI call from here on becomes a span
client = openai.OpenAI()
client.chat.completions.create(model="gpt-4o-mini", messages=[{{"role": "user", "content": "Hi"}}])
"""


@dataclass(frozen=True)
class Context:
    """What a page renders from: where the API is, the resolved sidebar selection and its summary."""

    api: str
    token: str | None
    selection: filters.Selection
    summary: dict[str, Any]


def decimal(text: Any) -> Decimal | None:
    """An API decimal string (or number) as a Decimal; None for null or garbage."""
    if text is None:
        return None
    try:
        return Decimal(str(text))
    except InvalidOperation:
        return None


def usd(value: Any) -> str:
    """Money for people: cents for dollars and up, enough significant digits for fractions of a cent."""
    amount = decimal(value)
    if amount is None:
        return NO_DATA
    size = abs(amount)
    if size == 0:
        return "$0.00"
    if size >= 1:
        text = f"{size:,.2f}"
    elif size >= Decimal("0.01"):
        text = f"{size:.4f}"
    else:
        # Sub-cent: every digit up to the API's nine decimals, trailing zeros dropped.
        text = format(size.quantize(Decimal("1e-9")).normalize(), "f")
    return f"-${text}" if amount < 0 else f"${text}"


def signed_usd(value: Decimal) -> str:
    """A money change with its sign first, as st.metric reads it."""
    return ("+" if value >= 0 else "-") + usd(abs(value))


def count(value: Any) -> str:
    """A whole number with thousands separators."""
    return NO_DATA if value is None else f"{int(value):,}"


def percent(fraction: Any, digits: int = 2) -> str:
    """A fraction (0 to 1) as a percentage."""
    return NO_DATA if fraction is None else f"{float(fraction) * 100:.{digits}f}%"


def millis(value: Any) -> str:
    """Milliseconds, or — when there was nothing to measure."""
    return NO_DATA if value is None else f"{float(value):,.0f} ms"


def change(now: Any, before: Any, unit: str = "", scale: float = 1.0, digits: int = 0) -> str | None:
    """A signed difference for st.metric's delta, None when either side is missing."""
    if now is None or before is None:
        return None
    diff = (float(now) - float(before)) * scale
    return f"{diff:+,.{digits}f}{unit}"


def cost_cell(cost: Any, requests: Any = None, unpriced: Any = None) -> str:
    """A table cell for cost: the API's exact decimal string, flagged when some calls are unpriced (never $0)."""
    unpriced = int(unpriced or 0)
    if cost is None or (requests is not None and unpriced == int(requests) > 0):
        return "unpriced"
    return f"{cost} + {unpriced:,} unpriced" if unpriced else str(cost)


def empty_state(api: str) -> None:
    """What a new user needs: five lines to send data, and where this collector takes OTLP."""
    st.info("No LLM calls have reached this collector yet. Instrument an app and its OpenAI calls appear here.")
    st.code(SNIPPET.format(endpoint=api), language="python")
    st.markdown(
        f"- OTLP/HTTP endpoint: `{api}/v1/traces` (protobuf or JSON); any OpenTelemetry GenAI instrumentation works.\n"
        f"- Or set `LLMLEDGER_ENDPOINT={api}` (or `OTEL_EXPORTER_OTLP_ENDPOINT`) instead of passing `endpoint=`.\n"
        "- If the collector requires an ingest token, set `LLMLEDGER_INGEST_TOKEN` in the app.\n"
        "- `make run` (or `llmledger demo`) shows what instrumented calls look like."
    )


def show_error(error: client.ApiError) -> None:
    """An API failure, said plainly; a missing endpoint is an older collector, not a crash."""
    if isinstance(error, client.EndpointMissingError):
        st.warning(f"{error.message} Upgrade the collector to see this part of the dashboard.")
    else:
        st.error(error.message)


# A page's reads for a selection (cached client functions, arguments bound), fetched at once before it draws.
Reads = Callable[[str, str | None, filters.Selection], Sequence[fetch.Read]]


def live(
    render: Callable[[Context], None],
    *,
    require_calls: bool = True,
    before_any_call: bool = False,
    reads: Reads | None = None,
) -> None:
    """Run a page body in a fragment that re-runs on the sidebar's auto-refresh interval.

    The selection is resolved inside the fragment so a relative window ("last 24 hours") moves on each refresh.
    A collector without any call shows how to send some (unless `before_any_call`: alerts can be set up
    first); with `require_calls`, a selection without calls shows a hint instead of empty charts. `reads` are the
    page's own API reads: fetched at once with the summary, so the page draws from the cache.
    """

    def body() -> None:
        api, token = client.api_url(), client.read_token()
        selection = filters.current()
        filters.show_window_in_url(selection)
        try:
            fetch.concurrently(
                [
                    lambda: client.has_calls(api, token),
                    lambda: client.summary(api, token, selection.params()),
                    *(reads(api, token, selection) if reads else ()),
                ]
            )
            if not before_any_call and not client.has_calls(api, token):
                empty_state(api)
                return
            summary = client.summary(api, token, selection.params())
            st.caption(f"{selection.label}: {selection.start:%Y-%m-%d %H:%M} to {selection.end:%Y-%m-%d %H:%M} UTC")
            if require_calls and summary["requests"] == 0:
                st.info(
                    "No calls match these filters in this time range. Widen the time range or clear filters "
                    "in the sidebar."
                )
                return
            render(Context(api, token, selection, summary))
        except client.ApiError as error:
            show_error(error)

    st.fragment(body, run_every=filters.refresh_seconds())()
