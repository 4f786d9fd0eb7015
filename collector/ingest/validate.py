"""Last check before a row is stored: every value fits its column, so one odd span never fails a batch.

A row that does not fit is rejected (named in OTLP's partial success) instead of reaching DuckDB,
where it would fail the whole group commit.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from collector.store.schema import LLM_CALLS_COLUMNS

_INT32 = (-(2**31), 2**31 - 1)
_COUNT_LIMIT = 2**53  # tokens and rate-limit figures: beyond this a value is garbage, not usage
_MONEY_LIMIT = Decimal(10) ** 9  # DECIMAL(18,9) holds values below 1e9
_INTEGER_COLUMNS = tuple(name for name, kind in LLM_CALLS_COLUMNS if kind.startswith("INTEGER"))
_COUNT_COLUMNS = tuple(name for name, kind in LLM_CALLS_COLUMNS if kind.startswith("BIGINT"))
_FLOAT_COLUMNS = tuple(name for name, kind in LLM_CALLS_COLUMNS if kind.startswith("DOUBLE"))
# Amounts billed by the unit, held as a DOUBLE: never negative, and bounded like a count so pricing stays exact.
_AMOUNT_COLUMNS = ("audio_seconds",)
_MONEY_COLUMNS = tuple(name for name, kind in LLM_CALLS_COLUMNS if kind.startswith("DECIMAL"))


def problem(row: dict[str, Any]) -> str | None:
    """Why `row` can't be stored as it is, or None when every value fits its column."""
    return unpriced_problem(row) or money_problem(row)


def unpriced_problem(row: dict[str, Any]) -> str | None:
    """Why `row` can't be stored, looking at every column but the money ones (which pricing fills in)."""
    for name in _INTEGER_COLUMNS:
        value = row[name]
        if value is not None and not _INT32[0] <= value <= _INT32[1]:
            return f"{name} {value} is out of range"
    for name in _COUNT_COLUMNS:
        value = row[name]
        if value is not None and not 0 <= value < _COUNT_LIMIT:
            return f"{name} {value} is out of range" + (" (a count can't be negative)" if value < 0 else "")
    for name in _FLOAT_COLUMNS:
        value = row[name]
        if value is not None and not math.isfinite(value):
            return f"{name} is not a finite number"
    for name in _AMOUNT_COLUMNS:
        value = row[name]
        if value is not None and not 0 <= value < _COUNT_LIMIT:
            return f"{name} {value} is out of range" + (" (an amount can't be negative)" if value < 0 else "")
    return None


def money_problem(row: dict[str, Any]) -> str | None:
    """Why a cost of `row` doesn't fit DECIMAL(18,9), or None."""
    for name in _MONEY_COLUMNS:
        value = row[name]
        if value is not None and not (value.is_finite() and abs(value) < _MONEY_LIMIT):
            return f"{name} {value} is out of range"
    return None


def keep_storable(
    rows: list[dict[str, Any]], check: Callable[[dict[str, Any]], str | None] = problem
) -> tuple[list[dict[str, Any]], list[str]]:
    """The rows that fit (by `check`), and one message per row that doesn't."""
    kept: list[dict[str, Any]] = []
    rejected: list[str] = []
    for row in rows:
        reason = check(row)
        if reason is None:
            kept.append(row)
        else:
            rejected.append(f"span {row['span_id']} in trace {row['trace_id']}: {reason}")
    return kept, rejected
