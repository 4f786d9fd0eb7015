"""FOCUS rows as files: CSV (exact decimal text, no cell a spreadsheet would run) and Parquet through Arrow with
decimal and UTC timestamp types."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from collector.finance.focus import COLUMNS, COST_COLUMNS, COUNT_COLUMNS, QUANTITY_COLUMNS, TIME_COLUMNS
from collector.query.exports import neutralise

FORMATS = {"csv": "text/csv; charset=utf-8", "parquet": "application/vnd.apache.parquet"}
MONEY = pa.decimal128(38, 9)


def _type(name: str) -> pa.DataType:
    if name in COST_COLUMNS or name in QUANTITY_COLUMNS:
        return MONEY
    if name in TIME_COLUMNS:
        return pa.timestamp("us", tz="UTC")
    if name in COUNT_COLUMNS:
        return pa.int64()
    return pa.string()


SCHEMA = pa.schema([pa.field(name, _type(name)) for name in COLUMNS])


def _cell(value: Any) -> str:
    if isinstance(value, datetime):  # FOCUS date/time format: ISO 8601 in UTC with a Z
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(value, Decimal):  # exact, and always with a point so a reader infers a decimal, not an integer
        text = format(value.normalize() if value else Decimal(0), "f")
        return text if "." in text else text + ".0"
    return neutralise(value)


def to_csv(rows: list[dict[str, Any]]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    for row in rows:
        writer.writerow([_cell(row[name]) for name in COLUMNS])
    return buffer.getvalue().encode()


def to_parquet(rows: list[dict[str, Any]]) -> bytes:
    table = pa.Table.from_pylist([{name: row[name] for name in COLUMNS} for row in rows], schema=SCHEMA)
    sink = io.BytesIO()
    pq.write_table(table, sink, compression="zstd")
    return sink.getvalue()


def encode(rows: list[dict[str, Any]], file_format: str) -> bytes:
    return to_parquet(rows) if file_format == "parquet" else to_csv(rows)
