"""PostgreSQL advisory locks shared by every collector on one lake.

A session lock lives as long as the connection that took it: when a collector dies (even SIGKILL), PostgreSQL
sees its connection close and releases the lock, so another collector can take over.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Iterator

import psycopg

from collector.store.file import StoreUnavailableError

log = logging.getLogger("llmledger.collector")

# Two-key advisory locks: a namespace of our own, so other users of the database can't collide with us.
NAMESPACE = 0x4C4C4D  # "LLM"
WRITE_CALLS = 1  # one writer of llm_calls / llm_calls_daily at a time, across collectors
LEADER = 2  # runs alerts, reconciliation, retention and compaction
MIGRATE = 3


# The server drops a session whose machine vanished (power loss, partition) after ~25 s of silence, releasing its
# locks; a killed process's socket closes at once. Without this PostgreSQL waits for the OS default, about two hours.
SESSION_KEEPALIVES = "SET tcp_keepalives_idle = 10; SET tcp_keepalives_interval = 5; SET tcp_keepalives_count = 3"
CLIENT_KEEPALIVES = {"keepalives": 1, "keepalives_idle": 10, "keepalives_interval": 5, "keepalives_count": 3}
WRITER_WAIT_S = 60  # longest a writer waits; its batch then fails (its senders retry) rather than hang a shutdown


class LockLostError(StoreUnavailableError):
    """The lock's connection broke while the block ran: another collector may have taken it meanwhile."""


class LockBusyError(StoreUnavailableError):
    """Another collector held the lock for longer than this one waits."""


class AdvisoryLock:
    """One lock key on a dedicated connection (re-opened when it broke)."""

    def __init__(self, conninfo: str, key: int, purpose: str, *, max_wait_s: int = 0) -> None:
        """`max_wait_s`: how long held() waits for the lock before raising (0: as long as it takes)."""
        self.conninfo = conninfo
        self.max_wait_s = max_wait_s
        self.key = key
        self.purpose = purpose
        self._con: psycopg.Connection | None = None
        self._held = False
        self._mutex = threading.Lock()

    def _connection(self) -> psycopg.Connection:
        if self._con is None or self._con.closed:
            self._con = psycopg.connect(
                self.conninfo,
                autocommit=True,
                application_name=f"llmledger {self.purpose}",
                connect_timeout=10,
                **CLIENT_KEEPALIVES,
            )
            self._con.execute(SESSION_KEEPALIVES)
            self._con.execute(f"SET lock_timeout = '{int(self.max_wait_s)}s'")
        return self._con

    def _still_held(self, con: psycopg.Connection) -> bool:
        """Whether this session holds the lock (a live connection alone doesn't say: the lock may never have been
        taken, or taken by a session before a reconnect)."""
        (held,) = con.execute(
            "SELECT count(*) > 0 FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid() "
            "AND classid = %s AND objid = %s AND objsubid = 2 AND granted",
            (NAMESPACE, self.key),
        ).fetchone()
        return bool(held)

    @contextlib.contextmanager
    def held(self) -> Iterator[Callable[[], None]]:
        """Wait for the lock (see max_wait_s), run the block, release it. The block gets a function that raises
        LockLostError when the lock is no longer held: call it right before committing what the lock guards."""
        with self._mutex:
            con = self._connection()
            try:
                con.execute("SELECT pg_advisory_lock(%s, %s)", (NAMESPACE, self.key))
            except psycopg.errors.LockNotAvailable:  # lock_timeout: the connection is fine
                raise LockBusyError(
                    f"another collector held the {self.purpose} lock for over {self.max_wait_s} s"
                ) from None
            except psycopg.Error:
                self._drop()
                raise

            def check() -> None:
                try:
                    if self._still_held(con):
                        return
                except psycopg.Error:
                    pass
                raise LockLostError(f"lost the {self.purpose} lock (its PostgreSQL connection broke)")

            try:
                yield check
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
                    if self._still_held(con):
                        return True
                    log.warning("lost the %s lock", self.purpose)
                    self._held = False
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
