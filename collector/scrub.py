"""API keys never reach the database: every text column of every normalized row is scrubbed at ingest.

A value holding something shaped like an OpenAI key (`sk-` and 16 or more key characters, not inside a longer
word: the wrapper's own content redaction uses the same pattern) has that part replaced by `[REDACTED_API_KEY]`;
the rest of the value is kept (a JSON `tags` value stays valid JSON). Each (span, column) scrubbed is recorded in
`scrubbed_secrets` with the call's service, environment and time, which is what the readiness item
`sec.no_secrets` counts, and in the `llmledger_secrets_scrubbed_total` counter. Re-sent spans are recorded once.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime
from itertools import chain
from operator import itemgetter
from typing import Any

from collector.metrics import Metrics
from collector.schema import LLM_CALLS_COLUMNS
from collector.store import Store

KEY_PATTERN = re.compile(r"\bsk-[A-Za-z0-9_\-]{16,}")
REPLACEMENT = "[REDACTED_API_KEY]"
METRIC = "llmledger_secrets_scrubbed_total"
# Text columns, but not the hex ids (they can't hold a key, and the record refers to the span by them).
TEXT_COLUMNS = tuple(
    name
    for name, kind in LLM_CALLS_COLUMNS
    if kind.startswith("VARCHAR") and name not in ("trace_id", "span_id", "parent_span_id")
)
_texts_of = itemgetter(*TEXT_COLUMNS)


def scrub_rows(rows: Sequence[dict[str, Any]]) -> list[tuple[dict[str, Any], str]]:
    """Replace key-shaped text in `rows` in place; returns (row, column) for each value changed."""
    # One substring test over the whole batch first: in the usual batch nothing looks like a key. Measured here at
    # ~0.6-0.9 us per row, against ~25 us to normalize the row.
    if "sk-" not in "\x00".join(filter(None, chain.from_iterable(map(_texts_of, rows)))):
        return []
    found = []
    for row in rows:
        for name in TEXT_COLUMNS:
            value = row[name]
            if value is not None and "sk-" in value:
                cleaned, count = KEY_PATTERN.subn(REPLACEMENT, value)
                if count:
                    row[name] = cleaned
                    found.append((row, name))
    return found


def scrub(rows: Sequence[dict[str, Any]], metrics: Metrics, store: Store | None) -> int:
    """Scrub `rows` in place, count what was scrubbed and record it in `store` (None: count only)."""
    found = scrub_rows(rows)
    if not found:
        return 0
    metrics.add(METRIC, len(found))
    if store is not None:
        now = datetime.now(tz=UTC)
        with store.transaction() as con:
            rows = [
                [row["trace_id"], row["span_id"], column, row["service"], row["environment"], row["start_time"], now]
                for row, column in found
            ]
            con.executemany("INSERT INTO scrubbed_secrets VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING", rows)
    return len(found)
