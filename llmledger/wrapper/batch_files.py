"""Which batch a file belongs to: output/error file ids remembered from the Batch objects the app received."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

from llmledger.wrapper import extract
from llmledger.wrapper.batch_lines import BatchInfo, endpoint_for

_REMEMBERED_FILES = 4096


class _KnownFiles:
    """output/error file id → its batch, from every Batch object the app received; bounded (oldest out)."""

    def __init__(self, size: int = _REMEMBERED_FILES) -> None:
        self._size = size
        self._files: OrderedDict[str, BatchInfo] = OrderedDict()
        self._lock = threading.Lock()

    def remember(self, batch: Any) -> None:
        batch_id = batch_field(batch, "id")
        if batch_field(batch, "object") != "batch" or not isinstance(batch_id, str):
            return
        # An expired or cancelled batch still has an output file, of the requests it finished before then.
        ends = (batch_field(batch, key) for key in ("completed_at", "expired_at", "cancelled_at"))
        finished = next((end for end in ends if isinstance(end, int) and end > 0), None)
        info = BatchInfo(batch_id, finished, endpoint_for(batch_field(batch, "endpoint")))
        with self._lock:
            for key in ("output_file_id", "error_file_id"):
                file_id = batch_field(batch, key)
                if isinstance(file_id, str) and file_id:
                    self._files[file_id] = info
                    self._files.move_to_end(file_id)
            while len(self._files) > self._size:
                self._files.popitem(last=False)

    def get(self, file_id: str) -> BatchInfo | None:
        with self._lock:
            return self._files.get(file_id)

    def clear(self) -> None:
        with self._lock:
            self._files.clear()


known_files = _KnownFiles()


def batch_field(obj: Any, name: str) -> Any:
    """A field of a Batch (or a page of them), as an SDK model or as raw JSON."""
    return obj.get(name) if isinstance(obj, Mapping) else extract.field(obj, name)
