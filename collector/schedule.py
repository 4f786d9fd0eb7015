"""Background work every N seconds (alerts, retention, reconciliation, lake compaction), optionally only on
the leader: on a lake, exactly one collector at a time does it, and another takes over when it dies."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

log = logging.getLogger("llmledger.collector")


class Periodic:
    """Runs `task` every `interval_s` seconds on its own thread; a failing run is logged and the next one runs.

    With `is_leader`, a collector that isn't the leader asks again every `leader_poll_s` seconds (at most the
    interval) and runs the task as soon as it becomes the leader.
    """

    def __init__(
        self,
        name: str,
        interval_s: float,
        task: Callable[[], object],
        *,
        run_at_start: bool = True,
        is_leader: Callable[[], bool] | None = None,
        leader_poll_s: float = 5.0,
    ) -> None:
        self.name = name
        self.interval_s = interval_s
        self.task = task
        self.run_at_start = run_at_start
        self.is_leader = is_leader
        self.leader_poll_s = min(leader_poll_s, interval_s)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=f"llmledger-{self.name}", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        if self._thread is not None and self._thread.is_alive():
            self._thread.join(timeout)

    def _run(self) -> None:
        wait = 0.0 if self.run_at_start else self.interval_s
        while not self._stop.wait(wait):
            if self.is_leader is not None and not self.is_leader():
                wait = self.leader_poll_s
                continue
            try:
                self.task()
            except Exception:  # a failed pass is logged; the next one runs anyway
                log.exception("%s failed", self.name)
            wait = self.interval_s
