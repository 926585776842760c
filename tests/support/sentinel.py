"""A Redis Sentinel deployment of real processes, for tests and scripts: one master, its
replicas (``--replicaof``) and three ``redis-server <conf> --sentinel`` processes, all on
free loopback ports (never 6379), output in ``workdir``.

``SentinelGroup.start`` returns once every sentinel sees the master, every replica and
the other sentinels (a failover needs them); ``failover`` forces one (``SENTINEL
FAILOVER``) and returns once every sentinel names the new master and the old one serves
as its replica; ``kill_master`` is the unplanned kind (SIGKILL). ``command`` speaks RESP
to any of them over a raw connection, without Authly code.
"""

from __future__ import annotations

import contextlib
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import quote

import trio

from tests.support.processes import REDIS_SERVER, RedisProcess, free_port, spawn

SERVICE = "authly-test"
WAIT_SECONDS = 60.0  # a hang detector for the waits below, not a timing claim


class RedisReplyError(Exception):
    """An error reply (``-ERR ...``) to ``command``."""


async def command(port: int, *args: Any, password: str | None = None) -> Any:
    """Send one command to 127.0.0.1:port (after AUTH when ``password``); its reply, with
    bulk strings decoded, arrays as lists and error replies raised as RedisReplyError."""
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    async with stream:
        reader = _Reader(stream)
        commands = ([("AUTH", password)] if password else []) + [args]
        payload = b"".join(_encode(c) for c in commands)
        with trio.fail_after(10):
            await stream.send_all(payload)
            replies = [await reader.reply() for _ in commands]
    for reply in replies:
        if isinstance(reply, RedisReplyError):
            raise reply
    return replies[-1]


def _encode(args: tuple[Any, ...]) -> bytes:
    parts = [str(a).encode() for a in args]
    return b"*%d\r\n" % len(parts) + b"".join(b"$%d\r\n%s\r\n" % (len(p), p) for p in parts)


class _Reader:
    def __init__(self, stream: trio.abc.Stream) -> None:
        self.stream, self.buffer = stream, b""

    async def _line(self) -> bytes:
        while b"\r\n" not in self.buffer:
            await self._more()
        line, self.buffer = self.buffer.split(b"\r\n", 1)
        return line

    async def _more(self) -> None:
        chunk = await self.stream.receive_some(65536)
        if not chunk:
            raise ConnectionError("connection closed")
        self.buffer += chunk

    async def reply(self) -> Any:
        line = await self._line()
        kind, rest = line[:1], line[1:].decode()
        if kind == b"+":
            return rest
        if kind == b"-":
            return RedisReplyError(rest)
        if kind == b":":
            return int(rest)
        if kind == b"$":
            if int(rest) < 0:
                return None
            while len(self.buffer) < int(rest) + 2:
                await self._more()
            data, self.buffer = self.buffer[: int(rest)], self.buffer[int(rest) + 2 :]
            return data.decode(errors="replace")
        if kind == b"*":
            return None if int(rest) < 0 else [await self.reply() for _ in range(int(rest))]
        raise ConnectionError(f"unexpected reply {line!r}")


def _pairs(flat: list[Any]) -> dict[str, Any]:
    return dict(zip(flat[::2], flat[1::2], strict=True))


class SentinelGroup:
    """One master (``password`` for the data nodes, if given), ``replicas`` replicas and
    three sentinels (quorum 2) monitoring them as ``service``."""

    def __init__(
        self,
        workdir: Path,
        *,
        service: str = SERVICE,
        replicas: int = 1,
        password: str | None = None,
        down_after_ms: int = 1000,
    ) -> None:
        if REDIS_SERVER is None:
            raise RuntimeError("redis-server not found on PATH")
        self.workdir, self.service, self.password = workdir, service, password
        self.down_after_ms = down_after_ms
        self.nodes: list[RedisProcess] = []
        for i in range(1 + replicas):
            # A replica stores the master's snapshot on disk: in workdir, one file per node.
            args = ["--dir", str(workdir), "--dbfilename", f"node-{i}.rdb"]
            if password:  # any node may become a replica
                args += ["--masterauth", password]
            if i:
                args += ["--replicaof", "127.0.0.1", str(self.nodes[0].port)]
            log = workdir / f"node-{i}.log"
            self.nodes.append(RedisProcess(log, password=password, extra_args=args))
        self.sentinel_ports = [free_port() for _ in range(3)]
        self.sentinels: list[subprocess.Popen[bytes]] = []

    @property
    def url(self) -> str:
        """Authly's AUTHLY_REDIS_URL for this group."""
        auth = f":{quote(self.password, safe='')}@" if self.password else ""
        hosts = ",".join(f"127.0.0.1:{p}" for p in self.sentinel_ports)
        return f"redis+sentinel://{auth}{hosts}/{self.service}/0"

    # ---- lifecycle -----------------------------------------------------------------

    async def start(self) -> None:
        """Start the data nodes, then the sentinels; return once each sentinel sees the
        replicas and both other sentinels (RuntimeError after WAIT_SECONDS)."""
        try:
            for node in self.nodes:
                await node.start()
            master = self.nodes[0].port
            await self._until(lambda: self._replicas_online(master), "replicas to sync")
            for i, port in enumerate(self.sentinel_ports):
                conf = self.workdir / f"sentinel-{i}.conf"
                conf.write_text(self._sentinel_conf(port, master))
                argv = [str(REDIS_SERVER), str(conf), "--sentinel"]
                self.sentinels.append(spawn(argv, self.workdir / f"sentinel-{i}.log"))
            await self._until(self._sentinels_ready, "sentinels to see the group")
        except BaseException:
            self.close()
            raise

    def _sentinel_conf(self, port: int, master: int) -> str:
        s = self.service
        lines = [
            f"port {port}",
            "bind 127.0.0.1",
            f'dir "{self.workdir}"',
            "sentinel resolve-hostnames no",
            f"sentinel monitor {s} 127.0.0.1 {master} 2",
            f"sentinel down-after-milliseconds {s} {self.down_after_ms}",
            f"sentinel failover-timeout {s} 5000",
        ]
        if self.password:
            lines.append(f"sentinel auth-pass {s} {self.password}")
        return "\n".join(lines) + "\n"

    def close(self) -> None:
        """Kill every process this group started (only those); safe to call twice."""
        for proc in self.sentinels:
            if proc.poll() is None:
                proc.kill()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(5)
        for node in self.nodes:
            node.close()

    # ---- reading the group ---------------------------------------------------------

    async def node_command(self, port: int, *args: Any) -> Any:
        return await command(port, *args, password=self.password)

    async def sentinel_master_port(self, sentinel_port: int) -> int | None:
        try:
            reply = await command(
                sentinel_port, "SENTINEL", "GET-MASTER-ADDR-BY-NAME", self.service
            )
        except (OSError, ConnectionError, RedisReplyError):
            return None
        return int(reply[1]) if reply else None

    async def master_port(self) -> int:
        """The master's port as the sentinels agree on it (waits until they all do)."""
        ports: set[int | None] = set()

        async def agreed() -> bool:
            ports.clear()
            ports.update([await self.sentinel_master_port(p) for p in self.sentinel_ports])
            return len(ports) == 1 and None not in ports

        await self._until(agreed, "the sentinels to agree on the master")
        return int(next(iter(ports)))  # type: ignore[arg-type]

    async def role(self, port: int) -> str | None:
        """``master``/``slave`` as the node says (ROLE), None when it does not answer."""
        try:
            return str((await self.node_command(port, "ROLE"))[0])
        except (OSError, ConnectionError, RedisReplyError):
            return None

    def node(self, port: int) -> RedisProcess:
        return next(n for n in self.nodes if n.port == port)

    # ---- failovers -----------------------------------------------------------------

    async def failover(self) -> int:
        """``SENTINEL FAILOVER`` on the first sentinel; the new master's port, once every
        sentinel names it and it and the old master both say so (ROLE)."""
        old = await self.master_port()
        await command(self.sentinel_ports[0], "SENTINEL", "FAILOVER", self.service)
        return await self._new_master(old, old_survives=True)

    async def kill_master(self) -> int:
        """SIGKILL the master; the new master's port once the sentinels promoted a replica."""
        old = await self.master_port()
        await self.node(old).kill()
        return await self._new_master(old, old_survives=False)

    async def _new_master(self, old: int, *, old_survives: bool) -> int:
        new: list[int] = []

        async def switched() -> bool:
            ports = {await self.sentinel_master_port(p) for p in self.sentinel_ports}
            if len(ports) != 1 or None in ports or old in ports:
                return False
            port = int(next(iter(ports)))  # type: ignore[arg-type]
            if await self.role(port) != "master":
                return False
            if old_survives and await self.role(old) != "slave":
                return False
            new[:] = [port]
            return True

        await self._until(switched, "the failover to complete")
        return new[0]

    # ---- waiting -------------------------------------------------------------------

    async def _replicas_online(self, master: int) -> bool:
        info = await self.node_command(master, "INFO", "replication")
        return f"connected_slaves:{len(self.nodes) - 1}" in info and (
            info.count("state=online") == len(self.nodes) - 1
        )

    async def _sentinels_ready(self) -> bool:
        for port in self.sentinel_ports:
            try:
                master = _pairs(await command(port, "SENTINEL", "MASTER", self.service))
                replicas = await command(port, "SENTINEL", "REPLICAS", self.service)
            except (OSError, ConnectionError, RedisReplyError):
                return False
            if int(master["num-other-sentinels"]) != len(self.sentinel_ports) - 1:
                return False
            seen = [_pairs(r) for r in replicas]
            if len(seen) != len(self.nodes) - 1 or any("down" in r["flags"] for r in seen):
                return False
        return True

    async def _until(self, ready: Any, what: str) -> None:
        with trio.move_on_after(WAIT_SECONDS):
            while True:
                for proc in self.sentinels:
                    if proc.poll() is not None:
                        raise RuntimeError(f"a sentinel exited (status {proc.returncode})")
                try:
                    if await ready():
                        return
                except (OSError, ConnectionError, RedisReplyError):
                    pass
                await trio.sleep(0.05)
        raise RuntimeError(f"timed out after {WAIT_SECONDS:g} s waiting for {what}")
