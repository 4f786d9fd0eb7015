"""`llmledger collector`: wire the store, writer, receivers and API together and run until told to stop."""

from __future__ import annotations

import argparse
import contextlib
import errno
import functools
import logging
import signal
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import uvicorn

from collector.alerts.engine import AlertEngine
from collector.alerts.notify import Notifier
from collector.alerts.store import AlertStore
from collector.api.app import build_app
from collector.api.auth import check_listen_address
from collector.api.state import AppState
from collector.config import CollectorConfig
from collector.digests.sender import Digests
from collector.ingest import scrub
from collector.ingest.pipeline import Ingest
from collector.ingest.writer import BatchWriter
from collector.metrics import Metrics
from collector.money.overrides import OverridesError, PriceOverrides
from collector.money.price_book import PriceBook
from collector.money.price_updates import PriceUpdates
from collector.query.warm import Warmup
from collector.receive.grpc_service import start_grpc
from collector.receive.pool import DecodePool
from collector.reconcile.pull import Reconciler
from collector.schedule import Periodic
from collector.store.file import Store, StoreOpenError
from collector.store.lake.compaction import compact
from collector.store.lake.connect import LakeConfigError
from collector.store.retention import Retention

log = logging.getLogger("llmledger.collector")
LAKE_MIN_BATCH_ROWS = 10_000  # DuckLake writes a Parquet file per commit: make them large
LAKE_FLUSH_S = 0.5  # ... but never keep a sender waiting longer than this for its acknowledgement


class Collector:
    """A running collector; `serve()` blocks until SIGINT/SIGTERM, then commits what it acknowledged."""

    def __init__(self, config: CollectorConfig) -> None:
        self.config = config
        self.tokens = config.tokens
        check_listen_address(config.host, self.tokens)
        _check_ports(config)
        self.metrics = Metrics()
        self.store = open_store(config)
        if config.memory_limit:
            self.store.limit_memory(config.memory_limit)
        lake = self.store.is_lake
        flush_s = config.flush_interval if config.flush_interval is not None else (LAKE_FLUSH_S if lake else 0.0)
        self.writer = BatchWriter(
            self.store,
            self.metrics,
            max_pending_rows=max(config.max_pending_rows, LAKE_MIN_BATCH_ROWS * 2) if lake else config.max_pending_rows,
            min_batch_rows=LAKE_MIN_BATCH_ROWS if lake else 1,
            max_wait_s=flush_s,
        )
        self.price_book = PriceBook(_overrides(config.prices))
        self.price_updates = None
        if config.prices_update_url is not None:
            self.price_updates = PriceUpdates(
                self.store,
                self.price_book,
                self.metrics,
                config.prices_update_url,
                interval_s=config.prices_update_interval,
                timeout_s=config.prices_update_timeout,
            )
            self.price_updates.restore()  # the last good list, before the first call is priced
        self.ingest = Ingest(
            self.writer,
            self.metrics,
            self.price_book,
            record_rates=self.store.record_rates,
            record_scrubbed=functools.partial(scrub.record, self.store),
        )
        self.decode_pool = DecodePool(config.ingest_workers, self.price_book)  # workers start in serve()
        self.notifier = Notifier(self.store, config.dashboard_url)
        # On a lake these run on one collector at a time (the leader, store.leader_check); the others take over
        # when it dies.
        self.alert_engine = AlertEngine(self.store, config.alert_interval, self.notifier)
        # Digests are due at a whole hour: checked as often as alerts are evaluated (--alert-interval).
        self.digests = Digests(self.store, config.dashboard_url, interval_s=config.alert_interval)
        self.retention = Retention(self.store, config.retention_days, self.metrics) if config.retention_days else None
        self.reconciler = Reconciler.from_config(self.store, config, self.metrics)  # None: no key
        self.state = AppState(
            store=self.store,
            ingest=self.ingest,
            metrics=self.metrics,
            price_book=self.price_book,
            alerts=AlertStore(self.store),
            notifier=self.notifier,
            digests=self.digests,
            max_body_bytes=config.max_body_bytes,
            decode_pool=self.decode_pool,
            tokens=self.tokens,
            reconciler=self.reconciler,
            price_updates=self.price_updates,
            production_environments=config.production_environments,
            listen_host=config.host,
        )
        self.app = build_app(self.state)
        # The dashboard's first visit, run once in the background so the first visitor finds the caches warm.
        self.warmup = Warmup(self.store.reader, self.price_book.rates)
        self.compactor = (
            Periodic(
                "lake-compaction",
                config.compact_interval,
                functools.partial(compact, self.store, self.metrics),
                run_at_start=False,
                is_leader=self.store.leader_check,
            )
            if lake and config.compact_interval > 0
            else None
        )
        self.grpc_server = None
        self.grpc_port: int | None = None
        self.http_server: uvicorn.Server | None = None
        self._shut_down = False

    def serve(self, sock: socket.socket | None = None, before_shutdown: Callable[[], None] | None = None) -> None:
        """Serve until SIGINT/SIGTERM or `stop()`; on a signal, `before_shutdown` runs first, while the
        receivers still answer (the demo's simulated app flushes its last spans then)."""
        config = self.config
        config = uvicorn.Config(
            self.app, host=config.host, port=config.port, log_level="warning", access_log=False, lifespan="off"
        )
        server = self.http_server = _Server(config)
        # Before anything starts: a signal from here on stops all of it, through the `finally`.
        restore = _stop_on_signals(server, before_shutdown)
        try:
            self.decode_pool.start()
            self._start_grpc()
            self.alert_engine.start()
            self.digests.start()
            if self.retention is not None:
                self.retention.start()
            if self.reconciler is not None:
                self.reconciler.start()
            if self.compactor is not None:
                self.compactor.start()
            if self.price_updates is not None:
                self.price_updates.start()
            self.state.ready = True
            self.warmup.start()
            log.info(
                "llmledger collector: database %s, OTLP/HTTP and API on http://%s:%d",
                self.store.path,
                config.host,
                config.port,
            )
            server.run(sockets=[sock] if sock else None)
        finally:
            try:
                self.shutdown()  # still handling signals: a second SIGTERM must not cut the commit short
            finally:
                restore()

    def _start_grpc(self) -> None:
        config = self.config
        if config.grpc_port < 0:
            return
        try:
            self.grpc_server, self.grpc_port = start_grpc(
                self.ingest,
                self.decode_pool,
                self.metrics,
                self.tokens,
                config.host,
                config.grpc_port,
                config.max_body_bytes,
            )
        except RuntimeError:  # gRPC's only word for a failed bind; _check_ports found the port free a moment ago
            raise SystemExit(
                f"llmledger collector: could not listen on {config.host}:{config.grpc_port} (--grpc-port); "
                "another process may have just taken it: pass another --grpc-port"
            ) from None

    def stop(self) -> None:
        """Ask a collector serving in another thread to stop (as SIGTERM does in the main thread)."""
        if self.http_server is not None:
            self.http_server.should_exit = True

    def shutdown(self) -> None:
        """Stop everything and commit what was acknowledged; once (`up` may call it after an early signal)."""
        if self._shut_down:
            return
        self._shut_down = True
        self.state.ready = False
        self.warmup.stop()
        self.alert_engine.stop()
        self.digests.stop()
        if self.retention is not None:
            self.retention.stop()
        if self.reconciler is not None:
            self.reconciler.stop()
        if self.compactor is not None:
            self.compactor.stop()
        if self.price_updates is not None:
            self.price_updates.stop()
        self.notifier.close()
        if self.grpc_server is not None:
            self.grpc_server.stop(grace=5).wait()
        self.decode_pool.close()  # the receivers have stopped: nothing is being decoded
        self.writer.close()
        self.store.close()
        log.info("llmledger collector stopped; everything acknowledged is committed")


def open_store(config: CollectorConfig) -> Store:
    """The file given by --db, or with --lake the DuckLake shared with other collectors."""
    if config.lake is None:
        if config.data_path is not None:
            raise SystemExit("llmledger collector: --data-path goes with --lake")
        try:
            return Store(config.db)
        except StoreOpenError as exc:
            raise SystemExit(f"llmledger collector: {exc}") from None
    if config.data_path is None:
        raise SystemExit("llmledger collector: --lake needs --data-path (a shared folder or an s3:// URL)")
    from collector.store.lake.store import LakeStore

    try:
        return LakeStore(config.lake, config.data_path)
    except LakeConfigError as exc:
        raise SystemExit(f"llmledger collector: {exc}") from None


def _check_ports(config: CollectorConfig) -> None:
    """Exit with one line, before anything opens or starts, when a port this command is to listen on is taken (with
    `up` and `demo` the dashboard's too, which would otherwise fail in its own process with the collector running)."""
    wanted = {"--port": config.port, "--grpc-port": config.grpc_port, **dict(config.also_listening)}
    with contextlib.ExitStack() as probes:  # all held at once, so that two flags naming one port collide too
        for flag, port in wanted.items():
            if port > 65535:
                raise SystemExit(f"llmledger collector: {flag} {port} is not a port number (1-65535)")
            if port <= 0:  # 0: any free port; -1: not listening
                continue
            try:
                for family, address in _addresses(config.host, port):
                    probes.enter_context(_listening(family, address))
            except OSError as exc:
                raise SystemExit(f"llmledger collector: {_cannot_listen(config.host, port, flag, exc)}") from None


def _addresses(host: str, port: int) -> set[tuple[int, tuple[Any, ...]]]:
    """Every address a server listening on host:port binds (as asyncio's create_server, which uvicorn uses)."""
    infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    return {(family, address) for family, _, _, _, address in infos}


def _listening(family: int, address: tuple[Any, ...]) -> socket.socket:
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        # As the servers themselves bind: a port whose old connections linger in TIME_WAIT is free.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind(address)
        sock.listen()  # two bound sockets collide only once one listens
    except BaseException:
        sock.close()
        raise
    return sock


def _cannot_listen(host: str, port: int, flag: str, exc: OSError) -> str:
    if isinstance(exc, socket.gaierror):
        return f"cannot listen on {host} (--host): {exc.strerror}"
    if exc.errno == errno.EADDRINUSE:
        return f"port {port} on {host} ({flag}) is already in use: stop what listens there or pass another {flag}"
    return f"cannot listen on {host}:{port} ({flag}): {exc.strerror or exc}"


def _overrides(path: Path | None) -> PriceOverrides:
    try:
        return PriceOverrides.load(path)
    except OverridesError as exc:
        raise SystemExit(f"llmledger collector: {exc}") from None


class _Server(uvicorn.Server):
    """uvicorn, minus its signal handling: it re-raises SIGTERM after serving, which would kill the process
    before the writer commits and the database closes. `_stop_on_signals` handles them instead."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def _stop_on_signals(server: uvicorn.Server, before_shutdown: Callable[[], None] | None) -> Callable[[], None]:
    if threading.current_thread() is not threading.main_thread():
        return lambda: None

    def finish() -> None:
        try:
            if before_shutdown is not None:
                before_shutdown()
        finally:
            server.should_exit = True

    def stop(signum: int, frame: object) -> None:
        log.info("received %s: finishing requests in flight, then stopping", signal.Signals(signum).name)
        if server.should_exit or any(thread.name == "llmledger-stopping" for thread in threading.enumerate()):
            server.should_exit = True  # a second signal: stop now
            return
        threading.Thread(target=finish, name="llmledger-stopping", daemon=True).start()

    previous = {signum: signal.signal(signum, stop) for signum in (signal.SIGINT, signal.SIGTERM)}

    def restore() -> None:
        for signum, handler in previous.items():
            signal.signal(signum, handler)

    return restore


def main(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    # httpx2 logs each request's whole URL at INFO: a price-list mirror's token or a channel's secret path with it.
    logging.getLogger("httpx2").setLevel(logging.WARNING)
    Collector(CollectorConfig.from_args(args)).serve()
    return 0
