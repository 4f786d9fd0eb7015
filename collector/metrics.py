"""The collector's own counters, served at /metrics in Prometheus text format."""

from __future__ import annotations

import threading
from collections import defaultdict

_HELP = {
    "llmledger_spans_received_total": "Spans received over OTLP (all kinds).",
    "llmledger_rows_stored_total": "LLM-call rows newly stored.",
    "llmledger_rows_duplicate_total": "LLM-call rows already stored (re-sent spans).",
    "llmledger_duplicate_reports_total": (
        "Reports of a call another instrumentation's report already holds (one row kept), by the merged one's dialect."
    ),
    "llmledger_spans_rejected_total": "Spans rejected as malformed.",
    "llmledger_spans_non_llm_total": "Spans that were not LLM calls (counted and dropped).",
    "llmledger_requests_total": "OTLP and API requests, by path and status.",
    "llmledger_requests_rejected_total": "OTLP requests refused (bad input or overload), by reason.",
    "llmledger_metrics_points_received_total": "OTLP metric data points received (counted, not stored).",
    "llmledger_log_records_received_total": "OTLP log records received (counted, not stored).",
    "llmledger_request_seconds": "Request latency in seconds, by path.",
    "llmledger_commit_seconds": "Time to write and commit one group of rows.",
    "llmledger_requests_unauthorized_total": "Requests refused for a missing, unknown (401) or wrong-kind (403) token.",
    "llmledger_rows_deleted_by_retention_total": "Raw calls deleted by --retention-days (daily rollups kept).",
    "llmledger_reconcile_pulls_total": "Pulls from OpenAI's Costs and Usage APIs, by outcome.",
    "llmledger_secrets_scrubbed_total": "Stored values that looked like an OpenAI API key, replaced at ingest.",
    "llmledger_lake_compaction_seconds": "Time of one lake compaction pass (merge, expire, clean up).",
    "llmledger_sanity_flags_total": "Calls whose counts contradict each other (stored as reported), by flag.",
    "llmledger_price_updates_total": "Price list fetches (--prices-update), by outcome: new, unchanged, adopted "
    "(another collector's), timeout, unreachable, http_error, unusable, store_failed.",
    "llmledger_unpriced_units_total": "Calls priced without a unit their rates lack (left out of the cost), by unit.",
}


def _labels(labels: dict[str, str]) -> str:
    if not labels:
        return ""
    escaped = (f'{key}="{value}"'.replace("\n", " ") for key, value in sorted(labels.items()))
    return "{" + ",".join(escaped) + "}"


class Metrics:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counters: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
        self._summaries: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(lambda: [0.0, 0.0]))

    def add(self, name: str, amount: float = 1, **labels: str) -> None:
        with self._lock:
            self._counters[name][_labels(labels)] += amount

    def observe(self, name: str, seconds: float, **labels: str) -> None:
        with self._lock:
            total = self._summaries[name][_labels(labels)]
            total[0] += seconds
            total[1] += 1

    def value(self, name: str, **labels: str) -> float:
        with self._lock:
            return self._counters.get(name, {}).get(_labels(labels), 0.0)

    def render(self) -> str:
        lines: list[str] = []
        with self._lock:
            for name in sorted(set(_HELP) | set(self._counters) | set(self._summaries)):
                if name in self._summaries:
                    lines += [f"# HELP {name} {_HELP.get(name, name)}", f"# TYPE {name} summary"]
                    for labels, (total, count) in sorted(self._summaries[name].items()):
                        lines.append(f"{name}_sum{labels} {total:.6f}")
                        lines.append(f"{name}_count{labels} {count:.0f}")
                    continue
                lines += [f"# HELP {name} {_HELP.get(name, name)}", f"# TYPE {name} counter"]
                series = self._counters.get(name) or {"": 0.0}
                for labels, value in sorted(series.items()):
                    lines.append(f"{name}{labels} {value:.0f}")
        return "\n".join(lines) + "\n"
