"""A local Sentry endpoint for the tests: a real HTTP server on 127.0.0.1 that keeps the
envelopes it receives (decompressed, as raw bytes), and a "hanging" server that accepts
connections and never answers.

Used by ``tests/test_sentry_integration.py`` (not a fixture module: conftest is shared).
"""

from __future__ import annotations

import gzip
import json
import socket
import threading
import time
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["HangingServer", "SentryServer", "free_port", "hanging_server", "sentry_server"]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (right now)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class SentryServer:
    """Receives envelopes on ``http://127.0.0.1:<port>/api/<project>/envelope/``."""

    def __init__(self, port: int = 0, status: int = 200) -> None:
        self.status = status
        self.envelopes: list[bytes] = []
        self.requests: list[dict[str, str]] = []
        self._cond = threading.Condition()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                encoding = (self.headers.get("Content-Encoding") or "").lower()
                if encoding == "gzip":
                    body = gzip.decompress(body)
                elif encoding == "deflate":
                    body = zlib.decompress(body)
                with server._cond:
                    server.requests.append({k.lower(): v for k, v in self.headers.items()})
                    if server.status == 200:
                        server.envelopes.append(body)
                    server._cond.notify_all()
                self.send_response(server.status)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(b'{"id":"0"}')

            def log_message(self, format: str, *args: Any) -> None:
                pass

        ThreadingHTTPServer.allow_reuse_address = True
        self._httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self._httpd.daemon_threads = True
        self.port = int(self._httpd.server_address[1])
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()

    @property
    def dsn(self) -> str:
        """A DSN pointing at this server (project 1)."""
        return f"http://public@127.0.0.1:{self.port}/1"

    def wait_for(self, n: int, timeout: float = 10.0) -> list[bytes]:
        """Wait until ``n`` envelopes arrived (or ``timeout``); returns what arrived."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self.envelopes) < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
            return list(self.envelopes)

    def events(self) -> list[dict[str, Any]]:
        """The event items of every envelope received, parsed."""
        out = []
        for raw in self.envelopes:
            lines = raw.split(b"\n")
            # header, then (item header, payload) pairs
            i = 1
            while i + 1 < len(lines):
                header = json.loads(lines[i])
                payload = lines[i + 1]
                if header.get("type") == "event":
                    out.append(json.loads(payload))
                i += 2
        return out

    def close(self) -> None:
        """Stop serving and free the port."""
        self._httpd.shutdown()
        self._httpd.server_close()


class HangingServer:
    """Accepts TCP connections on 127.0.0.1 and never answers (a hung Sentry)."""

    def __init__(self) -> None:
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(16)
        self.port = int(self._sock.getsockname()[1])
        self._conns: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        self._sock.settimeout(0.2)
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:
                continue
            self._conns.append(conn)

    @property
    def dsn(self) -> str:
        """A DSN pointing at this server."""
        return f"http://public@127.0.0.1:{self.port}/1"

    def close(self) -> None:
        """Drop every connection and stop listening."""
        self._stop.set()
        self._thread.join(2)
        for conn in self._conns:
            conn.close()
        self._sock.close()


@contextmanager
def sentry_server(port: int = 0, status: int = 200) -> Iterator[SentryServer]:
    """A running :class:`SentryServer`, closed afterwards."""
    server = SentryServer(port, status)
    try:
        yield server
    finally:
        server.close()


@contextmanager
def hanging_server() -> Iterator[HangingServer]:
    """A running :class:`HangingServer`, closed afterwards."""
    server = HangingServer()
    try:
        yield server
    finally:
        server.close()
