"""Re-pricing: recompute stored costs for a time range with today's price book (new list prices, a new or
changed overrides file). Changed rows and the daily rollup change in one transaction; every run, dry or not,
leaves an audit row in `reprice_runs`. Running it twice changes nothing the second time."""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import pyarrow as pa

from collector.money.price_book import PRICED_FIELDS, PriceBook
from collector.store import hourly, readiness_rollup, rollups
from collector.store.file import Store
from llmledger import pricing

# What the book writes (cost_source is also read: "provider" marks a cost the provider reported).
PRICED = PRICED_FIELDS
# What it reads: the call, its provider and operation, and every column of its usage (pricing.Usage's fields).
_INPUTS = (
    "trace_id", "span_id", "start_time", "provider", "api_type", "operation", "request_model", "response_model",
    "service_tier", "batch", *(field.name for field in fields(pricing.Usage)), "span_cost_usd",
)  # fmt: skip
_CHANGES_SCHEMA = pa.schema(
    [("trace_id", pa.string()), ("span_id", pa.string()), ("cost_usd", pa.decimal128(18, 9)),
     ("cost_source", pa.string()), ("price_version", pa.string()), ("price_tier_fallback", pa.bool_()),
     ("price_provider_fallback", pa.bool_())]
)  # fmt: skip
_BATCH_ROWS = 50_000


@dataclass(frozen=True)
class RepriceResult:
    run_id: int
    dry_run: bool
    price_version: str
    rows_seen: int
    rows_changed: int  # any priced field: cost, source, price version, fallback flags
    costs_changed: int
    old_total_usd: Decimal
    new_total_usd: Decimal
    by_model: tuple[ModelChange, ...] = ()  # the models whose calls changed, the largest difference first

    def as_json(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "dry_run": self.dry_run,
            "price_version": self.price_version,
            "rows_seen": self.rows_seen,
            "rows_changed": self.rows_changed,
            "costs_changed": self.costs_changed,
            "old_total_usd": format(self.old_total_usd, "f"),
            "new_total_usd": format(self.new_total_usd, "f"),
            "difference_usd": format(self.new_total_usd - self.old_total_usd, "f"),
            "by_model": [change.as_json() for change in self.by_model],
        }


@dataclass
class ModelChange:
    """What re-pricing changes for one model: calls with any priced field changed, calls whose cost changed
    (unpriced ones becoming priced included), and their costs before and after."""

    model: str
    rows_changed: int = 0
    costs_changed: int = 0
    old_usd: Decimal = Decimal(0)
    new_usd: Decimal = Decimal(0)

    def as_json(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "rows_changed": self.rows_changed,
            "costs_changed": self.costs_changed,
            "old_usd": format(self.old_usd, "f"),
            "new_usd": format(self.new_usd, "f"),
            "difference_usd": format(self.new_usd - self.old_usd, "f"),
        }


def reprice(
    store: Store, book: PriceBook, start: datetime, end: datetime, *, dry_run: bool, now: datetime
) -> RepriceResult:
    """Price every call in [start, end) again; store the changes unless `dry_run`; record the run."""
    changes: list[dict[str, Any]] = []
    seen, costs_changed, old_total, new_total = 0, 0, Decimal(0), Decimal(0)
    changed_days: set[date] = set()
    by_model: dict[str, ModelChange] = {}
    columns = ", ".join((*_INPUTS, *PRICED))
    con = store.reader()
    try:
        result = con.execute(f"SELECT {columns} FROM llm_calls WHERE start_time >= ? AND start_time < ?", [start, end])
        while batch := result.fetchmany(_BATCH_ROWS):
            for values in batch:
                row = dict(zip((*_INPUTS, *PRICED), values, strict=True))
                old = tuple(row[name] for name in PRICED)
                book.price_row(row)
                new = tuple(row[name] for name in PRICED)
                seen += 1
                old_total += old[0] or 0
                new_total += new[0] or 0
                costs_changed += new[0] != old[0]
                if new != old:
                    changes.append({name: row[name] for name in ("trace_id", "span_id", *PRICED)})
                    changed_days.add(row["start_time"].astimezone(UTC).date())
                    model = row["response_model"] or row["request_model"] or ""
                    change = by_model.setdefault(model, ModelChange(model))
                    change.rows_changed += 1
                    change.costs_changed += new[0] != old[0]
                    change.old_usd += old[0] or 0
                    change.new_usd += new[0] or 0
    finally:
        con.close()
    if new_rates := book.take_new_rates():
        store.record_rates(new_rates)
    if changes and not dry_run:
        with store.calls_transaction() as con:
            _apply(con, changes, changed_days)
    # Its own transaction: in a lake the calls are in DuckLake and the runs in PostgreSQL. Re-pricing again
    # changes nothing, so a run whose record was lost can simply be repeated.
    with store.transaction() as con:
        run_id = store.next_id(con, "reprice_run_ids")
        con.execute(
            "INSERT INTO reprice_runs (id, ran_at, from_time, to_time, dry_run, price_version, rows_seen, "
            "rows_changed, costs_changed, old_total_usd, new_total_usd) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [run_id, now, start, end, dry_run, book.version, seen, len(changes), costs_changed, old_total, new_total],
        )
    models = tuple(sorted(by_model.values(), key=lambda c: (-abs(c.new_usd - c.old_usd), -c.rows_changed, c.model)))
    return RepriceResult(run_id, dry_run, book.version, seen, len(changes), costs_changed, old_total, new_total, models)


def _apply(con: Any, changes: list[dict[str, Any]], days: set[date]) -> None:
    """Update the changed rows, then rebuild the daily and hourly rollups of the (UTC) days they fall on."""
    con.register("repriced", pa.Table.from_pylist(changes, schema=_CHANGES_SCHEMA))
    try:
        con.execute(
            "UPDATE llm_calls SET cost_usd = r.cost_usd, cost_source = r.cost_source, "
            "price_version = r.price_version, price_tier_fallback = r.price_tier_fallback, "
            "price_provider_fallback = r.price_provider_fallback "
            "FROM repriced AS r WHERE llm_calls.trace_id = r.trace_id AND llm_calls.span_id = r.span_id"
        )
        listed = sorted(days)
        marks = ", ".join("?" * len(listed))
        con.execute(f"DELETE FROM llm_calls_daily WHERE day IN ({marks})", listed)
        # Bounded by start_time too, so DuckDB reads only the blocks of those days, not the whole table.
        first = datetime.combine(listed[0], time(), UTC)
        end = datetime.combine(listed[-1], time(), UTC) + timedelta(days=1)
        where = f" WHERE start_time >= ? AND start_time < ? AND {rollups.UTC_DAY} IN ({marks})"
        con.execute(
            f"INSERT INTO llm_calls_daily BY NAME {rollups.aggregate('llm_calls', where)}", [first, end, *listed]
        )
        readiness_rollup.rebuild_days(con, listed)  # its cost sums and unpriced counts changed too
        for day in listed:
            midnight = datetime.combine(day, time(), UTC)
            hourly.rebuild_between(con, midnight, midnight + timedelta(days=1))
    finally:
        con.unregister("repriced")
