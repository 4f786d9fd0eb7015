"""Circuit breakers per provider and model: closed → open after repeated failures → half-open (one probe after the
cool-down) → closed on the probe's success. Failures are what the service did (5xx, timeouts, connection errors),
never a 4xx the app caused nor a 429 (rate limits are the pacer's). The SDK's retries run inside one call: the
breaker counts calls."""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field

import openai

from llmledger.guard.errors import CircuitOpen
from llmledger.guard.settings import GuardSettings


def is_failure(error: BaseException | None) -> bool:
    if error is None:
        return False
    if isinstance(error, openai.APIConnectionError):  # timeouts too
        return True
    status = getattr(error, "status_code", None)
    return isinstance(status, int) and status >= 500


@dataclass
class _Circuit:
    state: str = "closed"  # closed | open | half_open
    consecutive: int = 0
    recent: deque[bool] = field(default_factory=deque)  # True: a failure
    failures: int = 0  # how many of `recent`: the error rate without summing them each call
    opened_at: float = 0.0
    probing: bool = False


class Breakers:
    def __init__(self, settings: GuardSettings, clock: object = time.monotonic) -> None:
        self.settings = settings
        self._clock = clock
        self._circuits: dict[str, _Circuit] = {}
        self._lock = threading.Lock()

    def state(self, key: str) -> str:
        circuit = self._circuits.get(key)
        return circuit.state if circuit is not None else "closed"

    def admit(self, key: str) -> bool:
        """Let a call through (True when it is the half-open probe) or raise `CircuitOpen`."""
        circuit = self._circuits.get(key)
        if circuit is None or circuit.state == "closed":
            return False
        with self._lock:
            now = self._clock()  # type: ignore[operator]
            if circuit.state == "open" and now - circuit.opened_at >= self.settings.cool_down_s:
                circuit.state = "half_open"
            if circuit.state == "half_open" and not circuit.probing:
                circuit.probing = True
                return True
            if circuit.state == "closed":
                return False
            wait = max(self.settings.cool_down_s - (now - circuit.opened_at), 0.0)
        raise CircuitOpen(key, wait)

    def release_probe(self, key: str) -> None:
        """The probe was let through but the call never went out (a budget stopped it): the next call probes."""
        with self._lock:
            circuit = self._circuits.get(key)
            if circuit is not None:
                circuit.probing = False

    def record(self, key: str, error: BaseException | None, probe: bool) -> None:
        failed = error is not None and is_failure(error)
        circuit = self._circuits.get(key)
        if not failed and not probe and circuit is not None and circuit.failures == 0 and circuit.state == "closed":
            recent = circuit.recent
            if len(recent) == recent.maxlen:
                # The common case changes nothing, so takes no lock: no failure among the last calls (nor a
                # consecutive one), and a success only pushes out another success. Read before a concurrent
                # failure counts, it is the success that came first; read after a concurrent opening (which clears
                # the window), it is one the next probe's verdict clears anyway.
                return
        with self._lock:
            if circuit is None:
                circuit = self._circuits.setdefault(key, _Circuit(recent=deque(maxlen=self.settings.error_rate_window)))
            if probe or circuit.state == "half_open":
                circuit.probing = False
                if failed:
                    self._open(circuit)
                else:
                    circuit.state, circuit.consecutive = "closed", 0
                    circuit.recent.clear()
                    circuit.failures = 0
                return
            recent = circuit.recent
            if len(recent) == recent.maxlen:
                circuit.failures -= recent[0]
            recent.append(failed)
            circuit.failures += failed
            circuit.consecutive = circuit.consecutive + 1 if failed else 0
            if circuit.state == "closed" and (
                circuit.consecutive >= self.settings.failure_threshold
                or (circuit.failures > 0 and self._rate_over(circuit))
            ):
                self._open(circuit)

    def _rate_over(self, circuit: _Circuit) -> bool:
        seen = len(circuit.recent)
        if seen * 2 < self.settings.error_rate_window:
            return False
        return circuit.failures / seen >= self.settings.error_rate_threshold

    def _open(self, circuit: _Circuit) -> None:
        circuit.state = "open"
        circuit.opened_at = self._clock()  # type: ignore[operator]
        circuit.recent.clear()
        circuit.failures = circuit.consecutive = 0
