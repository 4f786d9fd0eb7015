"""Pulling OpenAI's own numbers into the store: the Costs API (daily, by line item and project) and the completions
Usage API (hourly, by model, project, batch and service tier), whole UTC days at a time.

A pull of days [from, to) deletes and re-inserts those days in one transaction, so pulling a day again replaces
it. Amounts arrive as JSON floats and are parsed from the response text as `Decimal`, never through `float`.
The admin key comes from `OPENAI_ADMIN_KEY` or `--openai-admin-key-file`; it is handed to the SDK and nowhere
else (messages from OpenAI are scrubbed of it before they are logged or stored).
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from typing import TYPE_CHECKING, Any

import duckdb
import pyarrow as pa

from collector.metrics import Metrics
from collector.query.filters import QueryError
from collector.schedule import Periodic
from collector.store.file import Store

if TYPE_CHECKING:
    from collector.config import CollectorConfig

log = logging.getLogger("llmledger.collector")

DEFAULT_INTERVAL_S = 6 * 3600.0
# Each scheduled pull re-reads today, yesterday and the day before: OpenAI's figures for a day keep settling for
# a while after it ends.
PULL_DAYS = 3
MAX_DAYS = 366
COSTS_GROUP_BY = ["line_item", "project_id"]
USAGE_GROUP_BY = ["model", "project_id", "batch", "service_tier"]
COSTS_LIMIT = 180  # buckets (days) per page: the API's maximum
USAGE_LIMIT = 168  # hourly buckets per page: the API's maximum
MAX_PAGES = 10_000
NANO = Decimal("0.000000001")
SCOPE_HELP = (
    "the key lacks the api.usage.read scope, or is not an organization admin key. Create an admin key with read "
    "access to Usage (platform.openai.com > Organization settings > Admin keys) and give it to the collector in "
    "OPENAI_ADMIN_KEY or a file named by --openai-admin-key-file"
)
_KEY_LIKE = re.compile(r"\bsk-[A-Za-z0-9_\-*]{8,}")

COSTS_SCHEMA = pa.schema(
    [("day", pa.date32()), ("line_item", pa.string()), ("project_id", pa.string()),
     ("amount", pa.decimal128(38, 9)), ("currency", pa.string())]
)  # fmt: skip
USAGE_COUNTS = ("input_tokens", "input_cached_tokens", "input_audio_tokens", "output_tokens", "output_audio_tokens")
USAGE_SCHEMA = pa.schema(
    [("hour", pa.timestamp("us", tz="UTC")), ("day", pa.date32()), ("model", pa.string()),
     ("project_id", pa.string()), ("batch", pa.bool_()), ("service_tier", pa.string()),
     *[(name, pa.int64()) for name in USAGE_COUNTS], ("requests", pa.int64())]
)  # fmt: skip


def recent_days(now: datetime) -> tuple[date, date]:
    """The days a scheduled pull covers: [today - PULL_DAYS + 1, tomorrow), UTC."""
    today = now.astimezone(UTC).date()
    return today - timedelta(days=PULL_DAYS - 1), today + timedelta(days=1)


def day_range(start: datetime | None, end: datetime | None, now: datetime) -> tuple[date, date]:
    """Whole UTC days [from, to) covering [start, end); recent days by default, never past today."""
    default_from, tomorrow = recent_days(now)
    from_day = start.astimezone(UTC).date() if start else default_from
    to_day = tomorrow
    if end is not None:
        end = end.astimezone(UTC)
        to_day = min(end.date() + timedelta(days=end.time() != time(0)), tomorrow)
    if from_day >= tomorrow:
        raise QueryError("from", "is in the future: OpenAI has no figures for it yet")
    if from_day >= to_day:
        raise QueryError("from", "must be before to")
    if (to_day - from_day).days > MAX_DAYS:
        raise QueryError("to", f"at most {MAX_DAYS} days after from")
    return from_day, to_day


# --- parsing (pure) -----------------------------------------------------------------------------------------------


def amount(value: Any) -> Decimal:
    """An amount as the API sent it (a JSON number parsed as Decimal, or a string), to nano-dollars."""
    if isinstance(value, bool) or not isinstance(value, (Decimal, int, str)):
        raise ValueError(f"amount value {value!r} is not a JSON number or a numeric string")
    return Decimal(value).quantize(NANO, rounding=ROUND_HALF_EVEN)


def _bucket_day(bucket: Mapping[str, Any]) -> tuple[datetime, date]:
    start = datetime.fromtimestamp(int(bucket["start_time"]), tz=UTC)
    return start, start.date()


def cost_rows(pages: Iterable[Mapping[str, Any]], from_day: date, to_day: date) -> pa.Table:
    """`openai_costs` rows from Costs API pages: one per result with an amount, in days [from, to)."""
    rows: dict[str, list[Any]] = {name: [] for name in COSTS_SCHEMA.names}
    for page in pages:
        for bucket in page["data"]:
            _, day = _bucket_day(bucket)
            if not from_day <= day < to_day:
                continue
            for result in bucket["results"]:
                money = result.get("amount") or {}
                if money.get("value") is None:
                    continue
                values = {
                    "day": day,
                    "line_item": result.get("line_item"),
                    "project_id": result.get("project_id"),
                    "amount": amount(money["value"]),
                    "currency": str(money.get("currency") or "usd").lower(),
                }
                for name, value in values.items():
                    rows[name].append(value)
    return pa.table(rows, schema=COSTS_SCHEMA)


def usage_rows(pages: Iterable[Mapping[str, Any]], from_day: date, to_day: date) -> pa.Table:
    """`openai_usage` rows from completions Usage API pages: one per result, in days [from, to)."""
    rows: dict[str, list[Any]] = {name: [] for name in USAGE_SCHEMA.names}
    for page in pages:
        for bucket in page["data"]:
            hour, day = _bucket_day(bucket)
            if not from_day <= day < to_day:
                continue
            for result in bucket["results"]:
                batch = result.get("batch")
                values = {
                    "hour": hour,
                    "day": day,
                    "model": result.get("model"),
                    "project_id": result.get("project_id"),
                    "batch": None if batch is None else bool(batch),
                    "service_tier": result.get("service_tier"),
                    "requests": int(result.get("num_model_requests") or 0),
                }
                for name in USAGE_COUNTS:
                    count = result.get(name)
                    values[name] = None if count is None else int(count)
                values["input_tokens"] = values["input_tokens"] or 0
                values["output_tokens"] = values["output_tokens"] or 0
                for name, value in values.items():
                    rows[name].append(value)
    return pa.table(rows, schema=USAGE_SCHEMA)


def pages(call: Callable[..., Any], **params: Any) -> Iterator[dict[str, Any]]:
    """Every page of one admin API listing, following `next_page` while `has_more`; floats parsed as Decimal."""
    cursor = None
    for _ in range(MAX_PAGES):
        raw = call(**params, **({"page": cursor} if cursor else {}))
        page = json.loads(raw.text, parse_float=Decimal)
        yield page
        following = page.get("next_page")
        if not page.get("has_more") or not following or following == cursor:
            return
        cursor = following
    raise ValueError(f"more than {MAX_PAGES} pages")


# --- storing ------------------------------------------------------------------------------------------------------


@dataclass
class Run:
    """One pull of days [from_day, to_day): what it stored, or why it failed."""

    started_at: datetime
    from_day: date
    to_day: date
    trigger: str  # schedule | api
    ok: bool = False
    finished_at: datetime | None = None
    http_status: int | None = None
    error: str | None = None
    cost_rows: int = 0
    usage_rows: int = 0
    id: int | None = None

    def as_json(self) -> dict[str, Any]:
        shown = asdict(self)
        for name, value in shown.items():
            if isinstance(value, (date, datetime)):
                shown[name] = value.isoformat()
        return shown


RUN_COLUMNS = tuple(Run.__dataclass_fields__)


def _record(store: Store, con: duckdb.DuckDBPyConnection, run: Run) -> None:
    run.id = store.next_id(con, "reconcile_run_ids")
    con.execute(
        f"INSERT INTO reconcile_runs ({', '.join(RUN_COLUMNS)}) VALUES ({', '.join('?' * len(RUN_COLUMNS))})",
        [getattr(run, name) for name in RUN_COLUMNS],
    )


def replace_days(store: Store, run: Run, costs: pa.Table, usage: pa.Table) -> None:
    """Replace days [run.from_day, run.to_day) with these rows and record the run, in one transaction."""
    days = [run.from_day + timedelta(days=n) for n in range((run.to_day - run.from_day).days)]
    pulled = pa.table(
        {
            "day": pa.array(days, pa.date32()),
            "pulled_at": pa.array([run.started_at] * len(days), pa.timestamp("us", tz="UTC")),
        }
    )
    span = [run.from_day, run.to_day]
    with store.transaction() as con:
        for table, rows in (("openai_costs", costs), ("openai_usage", usage), ("openai_pulled_days", pulled)):
            con.execute(f"DELETE FROM {table} WHERE day >= ? AND day < ?", span)
            con.register("incoming_rows", rows)
            try:
                con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM incoming_rows")
            finally:
                con.unregister("incoming_rows")
        _record(store, con, run)


def record_failure(store: Store, run: Run) -> None:
    with store.transaction() as con:
        _record(store, con, run)


def runs(con: duckdb.DuckDBPyConnection, limit: int = 20) -> list[dict[str, Any]]:
    """The latest pulls, newest first."""
    result = con.execute(f"SELECT {', '.join(RUN_COLUMNS)} FROM reconcile_runs ORDER BY id DESC LIMIT ?", [limit])
    return [Run(**dict(zip(RUN_COLUMNS, row, strict=True))).as_json() for row in result.fetchall()]


# --- pulling ------------------------------------------------------------------------------------------------------


class Reconciler:
    """Pulls OpenAI's costs and usage on demand (`pull`) and every `interval_s` seconds (0: on demand only)."""

    def __init__(
        self,
        store: Store,
        key: str,
        metrics: Metrics,
        interval_s: float = DEFAULT_INTERVAL_S,
        client: Any = None,
        base_url: str | None = None,
    ) -> None:
        import openai

        self.store = store
        self.metrics = metrics
        self.interval_s = interval_s
        self._key = key
        # The SDK's admin client honours OPENAI_BASE_URL (and OPENAI_ORG_ID); the key goes only here.
        self._client = client or openai.OpenAI(admin_api_key=key, base_url=base_url, timeout=60.0)
        self._lock = threading.Lock()
        self._loop = Periodic(
            "reconciliation",
            interval_s,
            lambda: self.pull(*recent_days(datetime.now(tz=UTC)), trigger="schedule"),
            is_leader=store.leader_check,
        )

    @classmethod
    def from_config(cls, store: Store, config: CollectorConfig, metrics: Metrics) -> Reconciler | None:
        """A reconciler when an admin key is configured, else None (the API then says how to set one)."""
        if config.openai_admin_key is None:
            return None
        interval = DEFAULT_INTERVAL_S if config.reconcile_interval is None else config.reconcile_interval
        return cls(store, config.openai_admin_key, metrics, interval, base_url=config.openai_base_url)

    def start(self) -> None:
        if self.interval_s > 0:
            self._loop.start()

    def stop(self) -> None:
        self._loop.stop(10)
        self._client.close()

    def pull(self, from_day: date, to_day: date, trigger: str = "api") -> Run:
        """Pull days [from_day, to_day) and replace them in the store; a failure is recorded, not raised."""
        import openai

        with self._lock:
            run = Run(datetime.now(tz=UTC), from_day, to_day, trigger)
            last_day = to_day - timedelta(days=1)
            try:
                costs, usage = self._fetch(from_day, to_day)
            except openai.APIStatusError as exc:
                run.http_status = exc.status_code
                run.error = self._explain(exc)
            except openai.APIConnectionError as exc:
                run.error = f"could not reach OpenAI at {self._client.base_url}: {self._scrub(str(exc))}"
            except (ValueError, KeyError, TypeError, ArithmeticError) as exc:
                said = self._scrub(f"{type(exc).__name__}: {exc}")
                run.error = f"OpenAI's answer was not in the expected shape ({said})"
            run.finished_at = datetime.now(tz=UTC)
            if run.error is not None:
                self.metrics.add("llmledger_reconcile_pulls_total", ok="false")
                record_failure(self.store, run)
                log.warning("reconciliation: pulling %s to %s from OpenAI failed: %s", from_day, last_day, run.error)
                return run
            run.ok, run.cost_rows, run.usage_rows = True, costs.num_rows, usage.num_rows
            replace_days(self.store, run, costs, usage)
            self.metrics.add("llmledger_reconcile_pulls_total", ok="true")
            log.info(
                "reconciliation: pulled %s to %s from OpenAI (%d cost rows, %d usage rows)",
                from_day,
                last_day,
                run.cost_rows,
                run.usage_rows,
            )
            return run

    def _fetch(self, from_day: date, to_day: date) -> tuple[pa.Table, pa.Table]:
        window = {
            "start_time": int(datetime.combine(from_day, time(0), UTC).timestamp()),
            "end_time": int(datetime.combine(to_day, time(0), UTC).timestamp()),
        }
        api = self._client.admin.organization.usage.with_raw_response
        costs = pages(api.costs, **window, bucket_width="1d", group_by=COSTS_GROUP_BY, limit=COSTS_LIMIT)
        usage = pages(api.completions, **window, bucket_width="1h", group_by=USAGE_GROUP_BY, limit=USAGE_LIMIT)
        return cost_rows(costs, from_day, to_day), usage_rows(usage, from_day, to_day)

    def _explain(self, exc: Any) -> str:
        body = exc.body if isinstance(exc.body, Mapping) else {}
        said = self._scrub(str(body.get("message") or exc.message))
        if exc.status_code in (401, 403):
            return f"OpenAI refused the admin key ({exc.status_code}): {SCOPE_HELP}. OpenAI said: {said}"
        return f"OpenAI answered {exc.status_code}: {said}"

    def _scrub(self, text: str) -> str:
        """A message from OpenAI or the SDK without the key (OpenAI echoes keys it rejects)."""
        return _KEY_LIKE.sub("[REDACTED_KEY]", text.replace(self._key, "[REDACTED_KEY]"))
