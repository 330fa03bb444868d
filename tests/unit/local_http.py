"""A local HTTP server, for tests that fake an API at its protocol boundary."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class QuietHandler(BaseHTTPRequestHandler):
    """HTTP/1.1, and no access log on the test's output."""

    protocol_version = "HTTP/1.1"

    def log_message(self, *args: Any) -> None:
        return None


class LocalServer:
    """Serves `handler` on a free local port, in a thread, until close()."""

    def __init__(self, handler: type[BaseHTTPRequestHandler]) -> None:
        self._http = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=self._http.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self._http.server_address[1]}"

    def close(self) -> None:
        self._http.shutdown()
        self._http.server_close()
