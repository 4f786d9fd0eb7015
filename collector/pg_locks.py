"""PostgreSQL advisory locks shared by every collector on one lake.

A session lock lives as long as the connection that took it: when a collector dies (even SIGKILL), PostgreSQL
sees its connection close and releases the lock, so another collector can take over.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator

import psycopg

log = logging.getLogger("llmledger.collector")

# Two-key advisory locks: a namespace of our own, so other users of the database can't collide with us.
NAMESPACE = 0x4C4C4D  # "LLM"
WRITE_CALLS = 1  # one writer of llm_calls / llm_calls_daily at a time, across collectors
LEADER = 2  # runs alerts, reconciliation, retention and compaction
MIGRATE = 3


class AdvisoryLock:
    """One lock key on a dedicated connection (re-opened when it broke)."""

    def __init__(self, conninfo: str, key: int, purpose: str) -> None:
        self.conninfo = conninfo
        self.key = key
        self.purpose = purpose
        self._con: psycopg.Connection | None = None
        self._held = False
        self._mutex = threading.Lock()

    def _connection(self) -> psycopg.Connection:
        if self._con is None or self._con.closed:
            self._con = psycopg.connect(
                self.conninfo, autocommit=True, application_name=f"llmledger {self.purpose}", connect_timeout=10
            )
        return self._con

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        """Wait for the lock, run the block, release it."""
        with self._mutex:
            con = self._connection()
            try:
                con.execute("SELECT pg_advisory_lock(%s, %s)", (NAMESPACE, self.key))
            except psycopg.Error:
                self._drop()
                raise
            try:
                yield
            finally:
                try:
                    con.execute("SELECT pg_advisory_unlock(%s, %s)", (NAMESPACE, self.key))
                except psycopg.Error:  # the connection broke: PostgreSQL released the lock with it
                    self._drop()

    def holds(self) -> bool:
        """Whether this process holds the lock now, taking it if it is free (never waits)."""
        with self._mutex:
            try:
                con = self._connection()
                if self._held:
                    con.execute("SELECT 1")  # still connected, so still holding it
                    return True
                (taken,) = con.execute("SELECT pg_try_advisory_lock(%s, %s)", (NAMESPACE, self.key)).fetchone()
            except psycopg.Error as exc:
                if self._held:
                    log.warning("lost the %s lock: %s", self.purpose, exc)
                self._drop()
                return False
            if taken:
                log.info("this collector is now the %s", self.purpose)
            self._held = bool(taken)
            return self._held

    def _drop(self) -> None:
        self._held = False
        if self._con is not None:
            with contextlib.suppress(psycopg.Error):
                self._con.close()
        self._con = None

    def close(self) -> None:
        with self._mutex:
            self._drop()
