"""A local server of genai-prices price files (its data.json format), whose answer a test changes: a list, a bad
file, an error status, or a wait longer than the collector's timeout. Counts the requests it got."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

# USD per million tokens; a model is (id, input, cached input, output).
MINI = ("gpt-4o-mini", "0.15", "0.075", "0.60")
MINI_DEARER = ("gpt-4o-mini", "0.30", "0.15", "1.20")
NOVA = ("gpt-9-nova", "2.00", "0.50", "8.00")  # a model genai-prices 0.2.3 doesn't know


def price_file(*models: tuple[str, str, str, str]) -> bytes:
    """A price file with OpenAI's provider listing `models` (a model matches its name and its dated snapshots)."""
    provider: dict[str, Any] = {
        "id": "openai",
        "name": "OpenAI",
        "api_pattern": r"https://api\.openai\.com",
        "models": [
            {
                "id": name,
                "match": {"or": [{"equals": name}, {"starts_with": f"{name}-2"}]},
                "prices": {"input_mtok": given, "cache_read_mtok": cached, "output_mtok": output},
            }
            for name, given, cached, output in models
        ],
    }
    return json.dumps([provider]).encode()


class PriceServer:
    def __init__(self) -> None:
        self.body = price_file(MINI)
        self.status = 200
        self.delay_s = 0.0
        self.requests = 0
        self._release = threading.Event()  # ends a delayed answer early when the server stops
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.requests += 1
                if server.delay_s:
                    server._release.wait(server.delay_s)
                self.send_response(server.status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(server.body)))
                self.end_headers()
                self.wfile.write(server.body)

            def log_message(self, *args: object) -> None:
                pass

        self._http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._http.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._http.server_address[1]}/prices/data.json"
        self._thread = threading.Thread(target=self._http.serve_forever, daemon=True)
        self._thread.start()

    def serve(self, body: bytes, status: int = 200, delay_s: float = 0.0) -> None:
        self.body, self.status, self.delay_s = body, status, delay_s

    def stop(self) -> None:
        self._release.set()
        self._http.shutdown()
        self._http.server_close()
