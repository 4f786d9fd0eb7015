"""One read of a result file, on the finisher's thread: its lines parsed a slice at a time, each emitted as a span."""

from __future__ import annotations

from typing import Any

from opentelemetry import trace

from llmledger import diagnostics
from llmledger.wrapper import extract
from llmledger.wrapper.batch_files import known_files
from llmledger.wrapper.batch_lines import BatchInfo, first_char, parse_line, result_span
from llmledger.wrapper.batch_spans import emit
from llmledger.wrapper.finisher import finisher

_SLICE_BYTES = 1 << 20  # parse this much per finisher turn, so other spans are not held up by a large file
_SLICE_LINES = 500


class FileRead:
    """One read of one file: which batch it belongs to, and what the app's context said when it read it."""

    __slots__ = ("batch", "endpoint", "file_id", "labels", "read_ns", "recognised", "tracer")

    def __init__(self, tracer: trace.Tracer, file_id: str, labels: dict[str, Any], read_ns: int) -> None:
        self.tracer = tracer
        self.file_id = file_id
        self.labels = labels
        self.read_ns = read_ns
        self.batch: BatchInfo | None = None  # looked up on the finisher's thread, after earlier Batch objects
        self.recognised: bool | None = None  # decided by the first line
        self.endpoint: extract.Endpoint | None = None

    def add_line(self, raw: bytes | str) -> None:
        if self.recognised is False or not raw.strip():
            return
        line = parse_line(raw)
        if self.recognised is None:
            self.recognised = line is not None
            self.batch = known_files.get(self.file_id) or BatchInfo(self.file_id, None, None)
        if line is None or self.batch is None:
            return
        span = result_span(line, self.batch, self.read_ns, self.endpoint)
        if span is None:
            diagnostics.count("batch result lines skipped: endpoint unknown")
            return
        self.endpoint = span.endpoint
        emit(self.tracer, span, self.labels)


class Lines:
    """A file's content (or a piece of a streamed one): its lines, a slice per finisher turn."""

    __slots__ = ("data", "position", "read")

    def __init__(self, read: FileRead, data: bytes | str) -> None:
        self.read = read
        self.data = data
        self.position = 0

    def emit(self) -> None:
        data, read = self.data, self.read
        newline: Any = b"\n" if isinstance(data, bytes) else "\n"
        position, size = self.position, len(data)
        stop, lines = position + _SLICE_BYTES, 0
        while position < size and position < stop and lines < _SLICE_LINES and read.recognised is not False:
            end = data.find(newline, position)
            end = size if end < 0 else end
            read.add_line(data[position:end])
            position, lines = end + 1, lines + 1
        self.position = position
        if position < size and read.recognised is not False:
            finisher.submit(self)  # the rest after what is queued meanwhile


class Feeder:
    """A streamed read: buffers what the app has read and hands whole lines to the finisher, a slice at a time."""

    __slots__ = ("buffer", "done", "read", "started")

    def __init__(self, read: FileRead) -> None:
        self.read = read
        self.buffer = bytearray()
        self.started = False
        self.done = False

    def feed(self, chunk: bytes) -> None:
        if self.done or not chunk:
            return
        if not self.started:
            self.started = True
            if first_char(chunk) != b"{":  # not JSON lines: keep nothing
                self.done = True
                return
        self.buffer += chunk
        if len(self.buffer) >= _SLICE_BYTES:
            cut = self.buffer.rfind(b"\n") + 1
            if cut:
                finisher.submit(Lines(self.read, bytes(self.buffer[:cut])))
                del self.buffer[:cut]

    def close(self, whole: bool) -> None:
        """The app read to the end, or stopped (then the lines it read in full still count); once only."""
        if self.done:
            return
        self.done = True
        end = len(self.buffer) if whole else self.buffer.rfind(b"\n") + 1
        if end:
            finisher.submit(Lines(self.read, bytes(self.buffer[:end])))
        self.buffer = bytearray()
