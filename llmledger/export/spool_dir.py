"""The spool folder: batches as files under a temporary name renamed into place, oldest first, within a size cap.

Several processes may share one folder: readers never see half a file and writers need no lock, since a file
appears only by rename; only the holder of an `flock` on `.drain.lock` sends the files. The folder is capped in
bytes; the oldest files go first, and the spans they held are counted. Nothing here speaks to the network.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: without flock, give each process its own spool folder
    fcntl = None  # type: ignore[assignment]

SUFFIX = ".otlp"
LOCK_NAME = ".drain.lock"
DEFAULT_MAX_BYTES = 256 * 1024 * 1024


def spans_in(name: str) -> int:
    """The span count carried in a spool file's name (`{time_ns}-{pid}-{seq}-{spans}.otlp`)."""
    try:
        return int(name.removesuffix(SUFFIX).rsplit("-", 1)[1])
    except (IndexError, ValueError):
        return 0


class SpoolDir:
    """The folder: atomic writes, oldest-first listing, the size cap and the drain lock."""

    def __init__(self, path: Path, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.path = Path(path)
        self.max_bytes = max_bytes
        self._seq = itertools.count()
        self._clock_lock = threading.Lock()
        self._last_ns = 0
        self._lock_fd: int | None = None

    def files(self) -> list[Path]:
        """Spooled batches, oldest first (names sort in arrival order)."""
        return [self.path / name for name, _size in self._entries()]

    def has_files(self) -> bool:
        try:
            with os.scandir(self.path) as entries:
                return any(_is_batch(entry.name) for entry in entries)
        except OSError:  # missing (nothing spooled yet) or unreadable (writing will fail and be counted)
            return False

    def pending(self) -> tuple[int, int, int]:
        """(files, spans, bytes) waiting in the folder, whichever process wrote them."""
        entries = self._entries()
        return len(entries), sum(spans_in(name) for name, _ in entries), sum(size for _, size in entries)

    def write(self, body: bytes, spans: int) -> int:
        """Add a batch; returns how many spans the size cap then dropped (oldest first)."""
        self.path.mkdir(mode=0o700, parents=True, exist_ok=True)  # spans can name end users: owner only
        with self._clock_lock:
            # never backwards, so this process's files keep their order across a clock step
            self._last_ns = max(time.time_ns(), self._last_ns + 1)
            name = f"{self._last_ns:020d}-{os.getpid()}-{next(self._seq):06d}-{spans}{SUFFIX}"
        temporary = self.path / f".{name}.tmp"
        try:
            with temporary.open("xb") as handle:
                handle.write(body)
            os.replace(temporary, self.path / name)
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise
        return self._enforce_cap()

    def remove_stale_temporaries(self, older_than_s: float = 3600.0) -> None:
        """Half-written files of writers that died mid-write (a live writer renames its file within moments)."""
        cutoff = time.time() - older_than_s
        with contextlib.suppress(OSError), os.scandir(self.path) as entries:
            for entry in entries:
                if entry.name.startswith(".") and entry.name.endswith(".tmp") and entry.stat().st_mtime < cutoff:
                    Path(entry.path).unlink(missing_ok=True)

    def _enforce_cap(self) -> int:
        entries = self._entries()
        total = sum(size for _, size in entries)
        dropped = 0
        for name, size in entries:
            if total <= self.max_bytes:
                break
            total -= size  # gone either way: by our hand or another process's
            try:
                (self.path / name).unlink()
                dropped += spans_in(name)
            except FileNotFoundError:
                pass
        return dropped

    def _entries(self) -> list[tuple[str, int]]:
        found = []
        try:
            with os.scandir(self.path) as entries:
                for entry in entries:
                    if _is_batch(entry.name):
                        with contextlib.suppress(FileNotFoundError):
                            found.append((entry.name, entry.stat().st_size))
        except FileNotFoundError:
            return []
        return sorted(found)

    @contextlib.contextmanager
    def drain_lock(self) -> Iterator[bool]:
        """True inside when this process may send the files; False while another process does."""
        if fcntl is None:  # pragma: no cover
            yield True
            return
        self.path.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(self.path / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False
                return
            self._lock_fd = fd
            yield True
        finally:
            self._lock_fd = None
            os.close(fd)  # releases the lock

    def after_fork(self) -> None:
        """In a forked child: fresh locks, and the inherited copy of a held drain lock closed (else it would
        stay locked for as long as the child lives)."""
        self._clock_lock = threading.Lock()
        if self._lock_fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._lock_fd)
            self._lock_fd = None


def _is_batch(name: str) -> bool:
    return name.endswith(SUFFIX) and not name.startswith(".")
