"""A real collector on a free loopback port with a DuckDB file in a temporary folder."""

from __future__ import annotations

import argparse
import socket
import threading
from pathlib import Path
from typing import Any

import httpx2

from collector.api.auth import Tokens
from collector.config import CollectorConfig
from collector.options import add_arguments
from collector.server import Collector
from llmledger.testing.waiting import wait_until_ok


class RunningCollector:
    def __init__(self, db: Path, *extra_args: str, tokens: Tokens | None = None, port: int = 0) -> None:
        parser = argparse.ArgumentParser()
        add_arguments(parser)
        self.args = parser.parse_args(["--db", str(db), "--port", "0", "--grpc-port", "0", *extra_args])
        # IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY on accepted connections only then (else every answer waits
        # ~40 ms for a delayed ACK).
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", port))  # a fixed port when an app already points at it (outage tests)
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.collector = Collector(CollectorConfig.from_args(self.args, tokens=tokens or Tokens()))
        self.thread = threading.Thread(target=self.collector.serve, kwargs={"sock": self.sock}, daemon=True)
        self.thread.start()
        self.http = httpx2.Client(base_url=self.url, timeout=30)
        if not wait_until_ok(f"{self.url}/healthz", 20, interval=0.05, alive=self.thread.is_alive):
            raise RuntimeError("collector did not become healthy")

    @property
    def grpc_target(self) -> str:
        return f"127.0.0.1:{self.collector.grpc_port}"

    def get(self, path: str, **params: Any) -> Any:
        response = self.http.get(path, params=params)
        assert response.status_code == 200, response.text
        return response.json()

    def stop(self) -> None:
        self.collector.stop()
        self.thread.join(30)
        self.http.close()
