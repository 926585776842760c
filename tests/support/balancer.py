"""A round-robin HTTP load balancer on a free loopback port, for tests and scripts.

Every request goes to the next backend in turn, whatever connection it came on: no
sticky sessions, the harshest routing a deployment can meet. The balancer forwards the
method, path, headers (without hop-by-hop ones) and body, adds ``X-Forwarded-For``, and
returns the backend's answer as it is (redirects included: set the servers' issuer to
the balancer's URL). ``counts`` says how many requests each backend got.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailers",
    "transfer-encoding",
    "upgrade",
    "content-length",
    "host",
}


class RoundRobin:
    def __init__(self, backends: Sequence[str]) -> None:
        self.backends = list(backends)
        self.counts = [0] * len(self.backends)
        self._next = itertools.cycle(range(len(self.backends)))
        self._lock = threading.Lock()
        self._http = httpx.Client(timeout=30.0, follow_redirects=False)
        balancer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _forward(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
                headers["X-Forwarded-For"] = self.client_address[0]
                with balancer._lock:
                    index = next(balancer._next)
                    balancer.counts[index] += 1
                try:
                    answer = balancer._http.request(
                        self.command,
                        balancer.backends[index] + self.path,
                        headers=headers,
                        content=body,
                    )
                except httpx.HTTPError:
                    self.send_error(502)
                    return
                self.send_response(answer.status_code)
                for key, value in answer.headers.multi_items():
                    if key.lower() not in HOP_BY_HOP and key.lower() != "content-encoding":
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(answer.content)))
                self.end_headers()
                self.wfile.write(answer.content)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _forward

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = int(self._server.server_address[1])
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> RoundRobin:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
        self._http.close()
