"""Ending a DuckDB transaction that failed."""

from __future__ import annotations

import contextlib

import duckdb


def end_failed_transaction(con: duckdb.DuckDBPyConnection) -> None:
    """Roll back after an error. A failed COMMIT has ended the transaction already, and its error is the one to
    report, not ROLLBACK's 'no transaction is active'."""
    with contextlib.suppress(duckdb.TransactionException):
        con.execute("ROLLBACK")
