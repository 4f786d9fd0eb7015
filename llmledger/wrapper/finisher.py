"""Finished calls become spans on one background thread, so the app's thread never pays for the OpenTelemetry
SDK (span creation, attributes, processors) or for pricing and token counting.

The app's thread only appends the finished call to a queue. The worker wakes every `delay` or when a
batch is waiting, and emits what is there in order. A full queue drops (counted), never blocks.
A forked child starts with an empty queue and no thread (the parent's is not copied by `fork()`); its own
starts on its first call, as in a new process.
"""

from __future__ import annotations

import os
import threading
import weakref
from collections import deque
from typing import Protocol

from llmledger import diagnostics


class Finished(Protocol):
    def emit(self) -> None: ...


class SpanFinisher:
    def __init__(self, max_pending: int = 100_000, batch: int = 256, delay_s: float = 0.05) -> None:
        self.max_pending = max_pending
        self.batch = batch
        self.delay_s = delay_s
        self._exit_flush_registered = False
        self._reset()
        if hasattr(os, "register_at_fork"):
            reset = weakref.WeakMethod(self._reset)
            os.register_at_fork(after_in_child=lambda: (method := reset()) is not None and method())

    def _reset(self) -> None:
        # Also the fork handler: the parent's thread is gone in the child, and its locks may have been held
        # mid-fork. What the parent had queued is the parent's to emit (here it would be emitted twice).
        self._queue: deque[Finished] = deque()
        self._wake = threading.Event()
        self._idle = threading.Condition()
        self._busy = False
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()

    def submit(self, call: Finished) -> None:
        """Queue a finished call for emission (cheap: no span work here)."""
        if len(self._queue) >= self.max_pending:
            diagnostics.count("spans dropped: finisher queue full")
            return
        self._queue.append(call)
        if self._thread is None:
            self._start()
        if len(self._queue) >= self.batch:
            self._wake.set()

    def flush(self, timeout: float | None = 30.0) -> bool:
        """Emit everything queued so far; True when done within `timeout`."""
        if self._thread is None:
            self._drain()
            return True
        self._wake.set()
        with self._idle:
            return self._idle.wait_for(lambda: not self._queue and not self._busy, timeout)

    def _start(self) -> None:
        with self._start_lock:
            if self._thread is None:
                thread = threading.Thread(target=self._run, name="llmledger-finisher", daemon=True)
                thread.start()
                self._thread = thread
                if not self._exit_flush_registered:  # a forked child inherits the parent's registration
                    self._exit_flush_registered = True
                    _at_interpreter_exit(self.flush)

    def _run(self) -> None:
        while True:
            self._wake.wait(self.delay_s)
            self._wake.clear()
            self._drain()

    def _drain(self) -> None:
        with self._idle:
            self._busy = True
        try:
            while self._queue:
                call = self._queue.popleft()
                try:
                    call.emit()
                except Exception as exc:  # noqa: BLE001 - one bad span never stops the others
                    diagnostics.internal_error("emit", exc, reraise=False)
        finally:
            with self._idle:
                self._busy = False
                self._idle.notify_all()


def _at_interpreter_exit(flush: object) -> None:
    # Before atexit handlers (where the tracer provider shuts down its exporters), like concurrent.futures.
    register = getattr(threading, "_register_atexit", None)
    if register is not None:
        register(flush)
    else:  # pragma: no cover - every CPython 3.9+ has it
        import atexit

        atexit.register(flush)


finisher = SpanFinisher()
