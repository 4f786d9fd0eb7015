"""`llmledger load FILE`: replay recorded OTLP spans into a collector, through its real ingest path.

The file is the sample-data format (see `sample_data/__init__.py`): gzip-compressed, a sequence of
`ExportTraceServiceRequest` messages each preceded by its length as a 4-byte big-endian unsigned int.
Every span's start and end move by the same amount so that the latest end is now; ids never change, so
loading a file twice adds nothing (the collector keeps one row per trace id + span id).
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx2
from google.rpc.status_pb2 import Status
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from llmledger.credentials import TokenError, client_token
from sample_data import otlp_file

PROTOBUF = "application/x-protobuf"
DEFAULT_API = "http://127.0.0.1:4318"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MAX_BUSY_RETRIES = 60
_MAX_RETRY_AFTER_S = 30.0


class ReplayError(Exception):
    """A collector that refuses or cannot be reached."""


@dataclass(frozen=True)
class LoadResult:
    """What one load sent: spans and export requests, and the spans the collector rejected as malformed."""

    spans_sent: int
    requests: int
    rejected_spans: int = 0
    shift: timedelta = timedelta(0)


def shift_request(request: ExportTraceServiceRequest, offset_ns: int) -> int:
    """Move every span (and its events) by `offset_ns` in place; the number of spans."""
    count = 0
    for span in otlp_file.spans(request):
        count += 1
        if span.start_time_unix_nano:
            span.start_time_unix_nano += offset_ns
        if span.end_time_unix_nano:
            span.end_time_unix_nano += offset_ns
        for event in span.events:
            if event.time_unix_nano:
                event.time_unix_nano += offset_ns
    return count


def load_file(
    path: str | Path,
    endpoint: str,
    *,
    token: str | None = None,
    now: datetime | None = None,
    shift: bool = True,
    client: httpx2.Client | None = None,
) -> LoadResult:
    """POST every message of `path` to `{endpoint}/v1/traces`, shifted so that the data ends at `now` (default:
    the current time; `shift=False` keeps the file's times).

    `endpoint` is the collector's base URL (e.g. http://127.0.0.1:4318). A busy collector (503) is retried
    as its Retry-After says; any other answer but 200 raises `ReplayError`. `client` is for tests.
    """
    offset_ns = 0
    if shift:
        latest = otlp_file.latest_end_ns(path)
        if latest is not None:
            offset_ns = _unix_ns(now or datetime.now(tz=UTC)) - latest
    url = endpoint.rstrip("/") + "/v1/traces"
    headers = {"Content-Type": PROTOBUF}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    spans = requests = rejected = 0
    owned = client is None
    http = client or httpx2.Client(timeout=120)
    try:
        for request in otlp_file.read_requests(path):
            spans += shift_request(request, offset_ns) if offset_ns else sum(1 for _ in otlp_file.spans(request))
            rejected += _post(http, url, request.SerializeToString(), headers)
            requests += 1
    finally:
        if owned:
            http.close()
    return LoadResult(spans, requests, rejected, timedelta(microseconds=offset_ns // 1000))


def _post(http: httpx2.Client, url: str, body: bytes, headers: dict[str, str]) -> int:
    """Send one message; the number of spans the collector rejected."""
    for _ in range(_MAX_BUSY_RETRIES):
        try:
            response = http.post(url, content=body, headers=headers)
        except httpx2.HTTPError as exc:
            raise ReplayError(f"could not reach the collector at {url}: {exc}") from None
        if response.status_code == 503:
            time.sleep(_retry_after(response.headers.get("retry-after")))
            continue
        if response.status_code != 200:
            raise ReplayError(f"the collector at {url} answered {response.status_code}: {_reason(response)}")
        answer = ExportTraceServiceResponse()
        try:
            answer.ParseFromString(response.content)
        except Exception:  # noqa: BLE001 - a 200 we cannot read still means the spans were taken
            return 0
        return answer.partial_success.rejected_spans
    raise ReplayError(f"the collector at {url} stayed busy (503) through {_MAX_BUSY_RETRIES} attempts")


def _retry_after(value: str | None) -> float:
    try:
        seconds = float(value) if value else 1.0
    except ValueError:
        seconds = 1.0  # an HTTP date: not worth parsing for a local collector
    return min(max(seconds, 0.05), _MAX_RETRY_AFTER_S)


def _reason(response: httpx2.Response) -> str:
    if response.headers.get("content-type", "").startswith(PROTOBUF):
        status = Status()
        try:
            status.ParseFromString(response.content)
        except Exception:  # noqa: BLE001
            return f"{len(response.content)} bytes of protobuf"
        return status.message or "(no message)"
    return response.text[:500] or "(empty body)"


def _unix_ns(at: datetime) -> int:
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)  # naive times are UTC, as everywhere in llmledger
    return (at - _EPOCH) // timedelta(microseconds=1) * 1000


# --- command line ------------------------------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of `llmledger load`."""
    parser.add_argument("file", type=Path, help="length-delimited OTLP file (*.otlp.gz), e.g. the demo's sample data")
    parser.add_argument("--api", default=DEFAULT_API, help=f"the collector's base URL (default {DEFAULT_API})")
    parser.add_argument(
        "--token-file", type=Path, help="file holding the ingest token (default: $LLMLEDGER_INGEST_TOKEN[_FILE])"
    )
    parser.add_argument(
        "--no-shift", dest="shift", action="store_false", help="keep the file's timestamps instead of ending now"
    )


def main(args: argparse.Namespace) -> int:
    """Run `llmledger load`; prints one line and returns the exit status."""
    try:
        token = _token(args.token_file)
        started = time.perf_counter()
        result = load_file(args.file, args.api, token=token, shift=args.shift)
    except (ReplayError, otlp_file.OtlpFileError) as exc:
        print(f"llmledger load: {exc}", file=sys.stderr)
        return 1
    seconds = time.perf_counter() - started
    moved = f", shifted by {_days(result.shift)} to end now" if args.shift else ""
    rejected = f", {result.rejected_spans:,} rejected" if result.rejected_spans else ""
    print(
        f"loaded {result.spans_sent:,} spans in {result.requests} requests from {args.file} "
        f"into {args.api} in {seconds:.1f} s{moved}{rejected}"
    )
    return 1 if result.rejected_spans else 0


def _token(token_file: Path | None) -> str | None:
    try:
        return client_token("ingest", "admin", token_file=token_file)
    except TokenError as exc:
        raise ReplayError(str(exc)) from None


def _days(shift: timedelta) -> str:
    return f"{shift.total_seconds() / 86400:+.1f} days"
