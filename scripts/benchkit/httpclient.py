"""The load generator's HTTP clients (scripts/bench_core.py): a minimal keep-alive
HTTP/1.1 client on raw trio sockets (``--client raw``, the default: a few tens of
microseconds per request) and httpx.AsyncClient behind the same interface
(``--client httpx``, several times costlier)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import trio

IDLE_RECONNECT_SECONDS = 2.0  # hypercorn closes idle keep-alive connections after 5 s


@dataclass(frozen=True)
class Target:
    host: str
    port: int

    @property
    def base_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"


class ProtocolError(Exception):
    pass


class Client:
    """What a scenario sends its requests through (one per worker); ``last_headers`` are
    those of the last answer, names lowercase."""

    last_headers: list[tuple[str, str]]

    async def request(
        self,
        method: str,
        path: str,
        body: bytes = b"",
        content_type: str | None = None,
        headers: Sequence[tuple[str, str]] = (),
    ) -> tuple[int, bytes]:
        """(status, body) of one request; ``body`` is sent with a ``content_type``."""
        sent = [("User-Agent", "authly-bench")]
        if content_type is not None:
            sent.append(("Content-Type", content_type))
        content = body if content_type is not None else None
        return await self.send(method, path, content, [*sent, *headers])

    async def send(
        self, method: str, path: str, body: bytes | None, headers: list[tuple[str, str]]
    ) -> tuple[int, bytes]:
        raise NotImplementedError

    def drop(self) -> None:
        """Forget the connection after a failure."""


class RawClient(Client):
    """One keep-alive HTTP/1.1 connection on a trio socket.

    Just enough HTTP for this benchmark (Content-Length, chunked and read-to-close
    bodies), so the load generator costs far less per request than the server does.
    Any failure drops the connection; the next request opens a new one.
    """

    def __init__(self, target: Target) -> None:
        self._target = target
        self._host_header = target.base_url.removeprefix("http://")
        self._stream: trio.SocketStream | None = None
        self._buf = bytearray()
        self._last_used = 0.0
        self.last_headers: list[tuple[str, str]] = []  # of the last answer; names lowercase

    def drop(self) -> None:
        if self._stream is not None:
            self._stream.socket.close()
            self._stream = None
        self._buf.clear()

    async def aclose(self) -> None:
        self.drop()

    async def send(
        self, method: str, path: str, body: bytes | None, headers: list[tuple[str, str]]
    ) -> tuple[int, bytes]:
        head = f"{method} {path} HTTP/1.1\r\nHost: {self._host_header}\r\nAccept: */*\r\n"
        if body is not None:
            head += f"Content-Length: {len(body)}\r\n"
        for name, value in headers:
            head += f"{name}: {value}\r\n"
        data = head.encode("ascii") + b"\r\n" + (body or b"")
        if self._stream is not None and time.monotonic() - self._last_used > IDLE_RECONNECT_SECONDS:
            self.drop()
        if self._stream is None:
            self._stream = await trio.open_tcp_stream(self._target.host, self._target.port)
        try:
            await self._stream.send_all(data)
            status, payload, keep_alive = await self._read_response()
        except BaseException:
            self.drop()
            raise
        if keep_alive:
            self._last_used = time.monotonic()
        else:
            self.drop()
        return status, payload

    async def _fill(self) -> None:
        assert self._stream is not None
        chunk = await self._stream.receive_some(65536)
        if not chunk:
            raise ProtocolError("server closed the connection")
        self._buf += chunk

    async def _read_exact(self, n: int) -> bytes:
        while len(self._buf) < n:
            await self._fill()
        data = bytes(self._buf[:n])
        del self._buf[:n]
        return data

    async def _read_line(self) -> bytes:
        while (end := self._buf.find(b"\r\n")) < 0:
            if len(self._buf) > 65536:
                raise ProtocolError("line too long")
            await self._fill()
        line = bytes(self._buf[:end])
        del self._buf[: end + 2]
        return line

    async def _read_response(self) -> tuple[int, bytes, bool]:
        while (end := self._buf.find(b"\r\n\r\n")) < 0:
            if len(self._buf) > 65536:
                raise ProtocolError("response head too long")
            await self._fill()
        lines = bytes(self._buf[:end]).decode("latin-1").split("\r\n")
        del self._buf[: end + 4]
        parts = lines[0].split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/"):
            raise ProtocolError(f"bad status line {lines[0][:60]!r}")
        status = int(parts[1])
        keep_alive = parts[0] == "HTTP/1.1"
        length: int | None = None
        chunked = False
        self.last_headers = []
        for line in lines[1:]:
            name, _, value = line.partition(":")
            name = name.strip().lower()
            self.last_headers.append((name, value.strip()))
            value = value.strip().lower()
            if name == "content-length":
                length = int(value)
            elif name == "transfer-encoding":
                chunked = "chunked" in value
            elif name == "connection":
                keep_alive = "close" not in value and (keep_alive or "keep-alive" in value)
        if 100 <= status < 200:  # interim answer: the real one follows
            return await self._read_response()
        if chunked:
            body = bytearray()
            while True:
                size = int(((await self._read_line()).split(b";")[0]).strip() or b"0", 16)
                if size == 0:
                    while await self._read_line():  # trailers
                        pass
                    break
                body += await self._read_exact(size)
                await self._read_exact(2)
            return status, bytes(body), keep_alive
        if length is not None:
            return status, await self._read_exact(length), keep_alive
        if status in (204, 304):
            return status, b"", keep_alive
        assert self._stream is not None
        while chunk := await self._stream.receive_some(65536):  # read to close
            self._buf += chunk
        body = bytes(self._buf)
        self._buf.clear()
        return status, body, False


class HttpxClient(Client):
    """httpx.AsyncClient (one per load process, shared by its workers)."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.last_headers: list[tuple[str, str]] = []  # of the last answer; names lowercase

    def drop(self) -> None:
        pass  # httpx's pool discards broken connections by itself

    async def send(
        self, method: str, path: str, body: bytes | None, headers: list[tuple[str, str]]
    ) -> tuple[int, bytes]:
        response = await self._client.request(method, path, content=body, headers=dict(headers))
        # The shared client's cookie jar must not mix the workers' sessions: each worker
        # sends its own Cookie header (an explicit one wins over the jar's).
        self._client.cookies.clear()
        self.last_headers = [(k.lower(), v) for k, v in response.headers.multi_items()]
        return response.status_code, response.content
