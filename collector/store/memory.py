"""How much memory DuckDB may use: a share of the machine's (or its container's) memory, unless told otherwise.

DuckDB's own default is 80% of physical RAM, which leaves too little for the collector's Python side (decoding,
the ingest queue) and for a dashboard on the same machine; a cgroup's limit, when lower, is what the kernel enforces.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

ENV = "LLMLEDGER_MEMORY_LIMIT"
DEFAULT_SHARE = 0.5
_CGROUP_FILES = (Path("/sys/fs/cgroup/memory.max"), Path("/sys/fs/cgroup/memory/memory.limit_in_bytes"))
_SIZE = re.compile(r"^\s*\d+(\.\d+)?\s*(B|KB|KIB|MB|MIB|GB|GIB|TB|TIB)\s*$", re.IGNORECASE)
_SHARE = re.compile(r"^\s*(\d+(\.\d+)?)\s*%\s*$")


class MemoryLimitError(ValueError):
    """A memory limit that is neither a size (4GB, 512MiB) nor a share of the machine (50%)."""


def machine_bytes() -> int:
    """Physical memory, or the container's limit when that is lower."""
    physical = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    for path in _CGROUP_FILES:
        try:
            text = path.read_text().strip()
        except OSError:
            continue
        if text.isdigit():
            physical = min(physical, int(text))
    return physical


def resolve(setting: str | None) -> str:
    """DuckDB's memory_limit for `setting` (a size, a share like "40%", or None: half the machine's memory)."""
    if setting is None or not setting.strip():
        return f"{int(machine_bytes() * DEFAULT_SHARE) // (1024 * 1024)}MiB"
    if share := _SHARE.match(setting):
        fraction = float(share.group(1)) / 100
        if not 0 < fraction <= 1:
            raise MemoryLimitError(f"--memory-limit {setting!r}: a share must be above 0% and at most 100%")
        return f"{int(machine_bytes() * fraction) // (1024 * 1024)}MiB"
    if _SIZE.match(setting):
        return setting.strip().replace(" ", "")
    raise MemoryLimitError(f"--memory-limit {setting!r} is not a size (4GB, 512MiB) or a share of memory (50%)")
