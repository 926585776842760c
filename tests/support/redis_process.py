"""A private redis-server for tests and scripts (plain or TLS), on a free loopback port.
Re-exported by tests/support/processes.py."""

from __future__ import annotations

import os
import signal
import ssl
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import trio

from tests.support.base import REDIS_SERVER, REDIS_START_SECONDS, free_port, spawn

# ------------------------------------------------------------------ Redis


@dataclass(frozen=True)
class RedisTls:
    """TLS for a test redis-server (paths to PEM files, e.g. tests/support/certs.py's):
    it serves TLS only, with ``cert``/``key``, trusting ``ca`` for client certificates
    (required when ``auth_clients``). The readiness ping trusts ``ca`` and presents
    ``client_cert``/``client_key`` when given."""

    cert: Path
    key: Path
    ca: Path
    auth_clients: bool = True
    client_cert: Path | None = None
    client_key: Path | None = None

    def argv(self, port: int) -> list[str]:
        return [
            "--port", "0", "--tls-port", str(port),
            "--tls-cert-file", str(self.cert), "--tls-key-file", str(self.key),
            "--tls-ca-cert-file", str(self.ca),
            "--tls-auth-clients", "yes" if self.auth_clients else "no",
        ]  # fmt: skip

    def client_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=str(self.ca))
        if self.client_cert is not None:
            key = str(self.client_key) if self.client_key is not None else None
            context.load_cert_chain(str(self.client_cert), key)
        return context

    def url_options(self) -> str:
        """The rediss:// query string Authly needs to reach this server."""
        options = {"ssl_ca_certs": self.ca}
        if self.client_cert is not None:
            options["ssl_certfile"] = self.client_cert
        if self.client_key is not None:
            options["ssl_keyfile"] = self.client_key
        return "&".join(f"{k}={quote(str(v))}" for k, v in options.items())


def redis_argv(
    port: int,
    password: str | None = None,
    *,
    tls: RedisTls | None = None,
    extra_args: Sequence[str] = (),
) -> list[str]:
    """redis-server on 127.0.0.1:port without persistence (nothing written to disk);
    TLS-only on that port with ``tls``; ``extra_args`` appended (e.g. ``--user`` lines)."""
    assert REDIS_SERVER is not None, "redis-server not found on PATH"
    argv = [REDIS_SERVER, *(tls.argv(port) if tls else ["--port", str(port)])]
    argv += ["--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--loglevel", "warning"]
    if password:
        argv += ["--requirepass", password]
    return [*argv, *extra_args]


async def redis_ping(port: int, password: str | None = None, tls: RedisTls | None = None) -> bool:
    """True when a Redis on 127.0.0.1:port answers PING (after AUTH when a password is
    given; over TLS with ``tls``) within 0.5 s."""
    try:
        tcp = await trio.open_tcp_stream("127.0.0.1", port)
    except OSError:
        return False
    stream: trio.abc.Stream = tcp
    if tls is not None:
        stream = trio.SSLStream(tcp, tls.client_context(), server_hostname="127.0.0.1")
    commands = [f"AUTH {password}", "PING"] if password else ["PING"]
    try:
        async with stream:
            with trio.move_on_after(0.5):
                await stream.send_all("".join(f"{c}\r\n" for c in commands).encode())
                data = b""
                while data.count(b"\r\n") < len(commands):
                    chunk = await stream.receive_some(64)
                    if not chunk:
                        return False
                    data += chunk
                return data.split(b"\r\n")[len(commands) - 1].startswith(b"+PONG")
    except trio.BrokenResourceError:  # a reset, or the TLS handshake failed
        return False
    return False


class RedisProcess:
    """A private redis-server on a free loopback port that can be killed (SIGKILL), paused
    (SIGSTOP), resumed and started again, empty, on the same port. ``start``, ``kill``,
    ``restart`` and ``stop`` are for trio code; ``close`` kills it from anywhere."""

    def __init__(
        self,
        log_path: Path | None = None,
        *,
        password: str | None = None,
        tls: RedisTls | None = None,
        extra_args: Sequence[str] = (),
    ) -> None:
        if REDIS_SERVER is None:
            raise RuntimeError("redis-server not found on PATH")
        self.port = free_port()
        self.password = password
        self.tls = tls  # TLS only, on self.port
        self.extra_args = list(extra_args)  # e.g. ["--user", "authly", "on", ...]
        self.log_path = log_path  # None: output discarded
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        if self.tls is not None:
            return f"rediss://{auth}127.0.0.1:{self.port}/0?{self.tls.url_options()}"
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    async def start(self) -> None:
        """Start it and wait until it answers PING; RuntimeError when it does not."""
        argv = redis_argv(self.port, self.password, tls=self.tls, extra_args=self.extra_args)
        self.proc = proc = spawn(argv, self.log_path)
        with trio.move_on_after(REDIS_START_SECONDS):
            while not await redis_ping(self.port, self.password, self.tls):
                if proc.poll() is not None:
                    raise RuntimeError(f"redis-server exited with status {proc.returncode}")
                await trio.sleep(0.01)
            return
        self.close()
        raise RuntimeError(f"redis-server did not answer PING within {REDIS_START_SECONDS:g} s")

    async def kill(self) -> None:
        """SIGKILL (it works on a paused server too); returns when the process is gone."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            await trio.to_thread.run_sync(self.proc.wait)

    stop = kill

    async def restart(self) -> None:
        await self.kill()
        await self.start()

    def close(self) -> None:
        """``kill`` without trio (clean-up)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)

    def pause(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGSTOP)

    def resume(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGCONT)
