"""A relying party's back-channel logout endpoint for tests: a tiny HTTP/1.1 server on a
loopback port, in the test's own trio nursery (no HTTP library), answering each POST
with the next scripted status and handing what it received to the test."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

import trio


@dataclass(frozen=True)
class Received:
    method: str
    path: str
    headers: dict[str, str]
    form: dict[str, list[str]]
    status: int  # what the receiver answered


class LogoutReceiver:
    def __init__(self, statuses: list[int] | None = None) -> None:
        self.statuses = list(statuses or [])
        self._send, self.received = trio.open_memory_channel[Received](100)
        self.port = 0

    async def start(self, nursery: Any) -> None:
        listeners = await nursery.start(
            functools.partial(trio.serve_tcp, self._handle, 0, host="127.0.0.1")
        )
        self.port = listeners[0].socket.getsockname()[1]

    @property
    def uri(self) -> str:
        return f"http://127.0.0.1:{self.port}/backchannel-logout"

    async def _handle(self, stream: trio.SocketStream) -> None:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = await stream.receive_some(65536)
            if not chunk:
                return
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        request_line, *header_lines = head.decode("latin-1").split("\r\n")
        method, path, _ = request_line.split(" ", 2)
        headers = {}
        for line in header_lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0"))
        while len(body) < length:
            chunk = await stream.receive_some(65536)
            if not chunk:
                return
            body += chunk
        status = self.statuses.pop(0) if self.statuses else 200
        reply = f"HTTP/1.1 {status} Answer\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        await stream.send_all(reply.encode("ascii"))
        await stream.aclose()
        form = parse_qs(body.decode("ascii"), keep_blank_values=True)
        await self._send.send(Received(method, path, headers, form, status))

    async def next(self, timeout: float = 30) -> Received:
        """The next request received (``timeout`` only guards against a hung test)."""
        with trio.fail_after(timeout):
            return await self.received.receive()
