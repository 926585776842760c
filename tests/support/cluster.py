"""A Redis Cluster of real processes, for tests and scripts: ``masters`` masters with
``replicas`` replicas each (``redis-server --cluster-enabled yes``, joined by ``redis-cli
--cluster create``), all on free loopback ports (never 6379), each with its own cluster
bus port (Redis 7 ``--cluster-port``), ``nodes-<port>.conf`` and log in ``workdir``.

``RedisClusterGroup.start`` returns once every node says ``cluster_state:ok``, sees every
node connected and agrees with the others on who replicates whom; ``kill_master``
SIGKILLs a master and returns once a replica of it took over (the cluster promotes it on
its own, after ``node_timeout_ms`` and an election); ``restart_node`` starts a killed
node again on its port with its nodes.conf (its identity), so it rejoins, a replica of
the promoted node. ``command`` (tests/support/sentinel.py) speaks RESP to any node.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import trio

from tests.support.processes import REDIS_SERVER, RedisProcess, free_port
from tests.support.sentinel import RedisReplyError, command

REDIS_CLI = shutil.which("redis-cli")
WAIT_SECONDS = 60.0  # a hang detector for the waits below, not a timing claim
_DOWN = ("fail", "fail?", "handshake", "noaddr")  # CLUSTER NODES flags of a node not in


@dataclass(frozen=True)
class ClusterNode:
    """One line of CLUSTER NODES, as one node sees another."""

    id: str
    port: int
    flags: frozenset[str]
    master_id: str | None  # the id it replicates, None for a master
    connected: bool
    slots: tuple[str, ...]

    @property
    def role(self) -> str:
        return "master" if "master" in self.flags else "slave"

    @property
    def down(self) -> bool:
        return bool(self.flags.intersection(_DOWN))


def parse_nodes(text: str) -> list[ClusterNode]:
    """CLUSTER NODES' reply: ``id ip:port@cport flags master ping pong epoch link slots``."""
    nodes = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 8:
            continue
        address = fields[1].split("@", 1)[0]
        flags = frozenset(fields[2].split(","))
        nodes.append(
            ClusterNode(
                id=fields[0],
                port=int(address.rsplit(":", 1)[1] or 0),
                flags=flags,
                master_id=None if fields[3] == "-" else fields[3],
                connected=fields[7] == "connected",
                slots=tuple(fields[8:]),
            )
        )
    return nodes


class RedisClusterGroup:
    """``masters`` masters, ``replicas`` replicas each (``password`` on every node, also
    its ``--masterauth``); a replica is promoted after ``node_timeout_ms`` of silence."""

    def __init__(
        self,
        workdir: Path,
        *,
        masters: int = 3,
        replicas: int = 1,
        password: str | None = None,
        node_timeout_ms: int = 1000,
        extra_args: Sequence[str] = (),
    ) -> None:
        if REDIS_SERVER is None or REDIS_CLI is None:
            raise RuntimeError("redis-server or redis-cli not found on PATH")
        self.workdir, self.password, self.replicas = workdir, password, replicas
        self.nodes: list[RedisProcess] = []
        self.killed: set[int] = set()  # ports of the nodes killed on purpose
        taken: set[int] = set()
        for _ in range(masters * (1 + replicas)):
            node = RedisProcess(password=password)
            while node.port in taken:  # free_port may repeat itself between two calls
                node.port = free_port()
            bus = free_port()
            while bus in taken or bus == node.port:
                bus = free_port()
            taken.update((node.port, bus))
            node.log_path = workdir / f"node-{node.port}.log"
            node.extra_args = [
                "--cluster-enabled", "yes",
                "--cluster-config-file", str(workdir / f"nodes-{node.port}.conf"),
                "--cluster-node-timeout", str(node_timeout_ms),
                "--cluster-port", str(bus),
                "--cluster-replica-validity-factor", "0",  # any replica may be promoted
                "--dir", str(workdir),
                "--dbfilename", f"dump-{node.port}.rdb",
                "--appendonly", "no",
                "--repl-diskless-sync-delay", "0",  # a replica syncs now, not 5 s later
            ]  # fmt: skip
            if password:  # any node may become a replica
                node.extra_args += ["--masterauth", password]
            node.extra_args += extra_args  # e.g. an ACL user (``--user ...``)
            self.nodes.append(node)
        self._url_masters = [n.port for n in self.nodes[:masters]]  # corrected by start

    @property
    def url(self) -> str:
        """Authly's AUTHLY_REDIS_URL: the masters (as ``start`` found them) as startup nodes."""
        auth = f":{quote(self.password, safe='')}@" if self.password else ""
        hosts = ",".join(f"127.0.0.1:{p}" for p in self._url_masters)
        return f"redis://{auth}{hosts}/0"

    # ---- lifecycle -----------------------------------------------------------------

    async def start(self) -> None:
        """Start every node, create the cluster and wait until it settled; on failure
        close() and RuntimeError (after WAIT_SECONDS at most)."""
        try:
            for node in self.nodes:
                await node.start()
            await self._create()
            await self._until(self._settled, "the cluster to form")
            self._url_masters = await self.master_ports()
        except BaseException:
            self.close()
            raise

    async def _create(self) -> None:
        argv = [str(REDIS_CLI), "--cluster", "create"]
        argv += [f"127.0.0.1:{n.port}" for n in self.nodes]
        argv += ["--cluster-replicas", str(self.replicas), "--cluster-yes"]
        env = dict(os.environ)  # the password off the command line (redis-cli reads it)
        env.pop("REDISCLI_AUTH", None)
        if self.password:
            env["REDISCLI_AUTH"] = self.password
        with trio.move_on_after(WAIT_SECONDS):
            done = await trio.run_process(
                argv, capture_stdout=True, capture_stderr=True, check=False, env=env
            )
            if done.returncode == 0:
                return
            output = (done.stdout + done.stderr).decode(errors="replace")
            raise RuntimeError(f"redis-cli --cluster create failed:\n{output}")
        raise RuntimeError(f"redis-cli --cluster create still running after {WAIT_SECONDS:g} s")

    def close(self) -> None:
        """Kill every process this group started (only those); safe to call twice."""
        for node in self.nodes:
            node.close()

    # ---- reading the cluster -------------------------------------------------------

    async def node_command(self, port: int, *args: Any) -> Any:
        return await command(port, *args, password=self.password)

    def node(self, port: int) -> RedisProcess:
        return next(n for n in self.nodes if n.port == port)

    def live_ports(self) -> list[int]:
        """The nodes whose process runs (not killed, not exited)."""
        return [n.port for n in self.nodes if n.proc is not None and n.proc.poll() is None]

    async def cluster_nodes(self, port: int | None = None) -> list[ClusterNode]:
        """CLUSTER NODES as node ``port`` sees it (default: the first live node answering)."""
        for candidate in [port] if port is not None else self.live_ports():
            try:
                return parse_nodes(await self.node_command(candidate, "CLUSTER", "NODES"))
            except (OSError, ConnectionError, RedisReplyError):
                if port is not None:
                    raise
        raise ConnectionError("no live cluster node answers")

    async def master_ports(self) -> list[int]:
        """The masters serving slots (a failed master is none), sorted."""
        nodes = await self.cluster_nodes()
        return sorted(n.port for n in nodes if n.role == "master" and n.slots and not n.down)

    async def replica_of(self, master_port: int) -> int:
        """The port of a replica of that master (one not marked down, if there is one)."""
        nodes = await self.cluster_nodes()
        master = next(n for n in nodes if n.port == master_port)
        found = sorted((n.down, n.port) for n in nodes if n.master_id == master.id)
        if not found:
            raise RuntimeError(f"no replica of 127.0.0.1:{master_port}")
        return found[0][1]

    async def cluster_ok(self, port: int) -> bool:
        return "cluster_state:ok" in await self.node_command(port, "CLUSTER", "INFO")

    # ---- failures ------------------------------------------------------------------

    async def kill_master(self, port: int | None = None) -> int:
        """SIGKILL a master (default: the first); the port of the replica that took over,
        once the live nodes call it a master and all say ``cluster_state:ok``."""
        nodes = await self.cluster_nodes()
        old = port if port is not None else (await self.master_ports())[0]
        old_id = next(n.id for n in nodes if n.port == old)
        candidates = {n.port for n in nodes if n.master_id == old_id}
        if not candidates:
            raise RuntimeError(f"127.0.0.1:{old} has no replica to take over")
        self.killed.add(old)
        await self.node(old).kill()
        new: list[int] = []

        async def promoted() -> bool:
            for live in self.live_ports():
                if not await self.cluster_ok(live):
                    return False
            seen = await self.cluster_nodes()
            new[:] = [n.port for n in seen if n.port in candidates and n.role == "master"]
            return bool(new) and not any(n.down for n in seen if n.port == new[0])

        await self._until(promoted, f"a replica of 127.0.0.1:{old} to take over")
        return new[0]

    async def kill_node(self, port: int) -> None:
        """SIGKILL one node and return at once (no waiting for the cluster to react)."""
        self.killed.add(port)
        await self.node(port).kill()

    async def failover_to(self, replica: int) -> None:
        """A planned failover (CLUSTER FAILOVER on ``replica``, which first catches up
        with its master); return once the cluster has settled with it as a master."""
        await self.node_command(replica, "CLUSTER", "FAILOVER")

        async def promoted() -> bool:
            info = await self.node_command(replica, "INFO", "replication")
            return "role:master" in info and await self._settled()

        await self._until(promoted, f"127.0.0.1:{replica} to take over as a master")

    async def restart_node(self, port: int) -> None:
        """Start a killed node again (same port, same nodes.conf); return once it rejoined:
        every node connected, agreeing on the roles, ``cluster_state:ok`` everywhere."""
        await self.node(port).restart()
        self.killed.discard(port)
        await self._until(self._settled, f"127.0.0.1:{port} to rejoin the cluster")

    # ---- waiting -------------------------------------------------------------------

    async def _settled(self) -> bool:
        """Every node not killed up, each seeing all of them connected and none down, with
        one view of who replicates whom, ``cluster_state:ok`` and its replication link up."""
        views = set()
        for port in self.live_ports():
            nodes = await self.cluster_nodes(port)
            if len(nodes) != len(self.nodes) or not await self.cluster_ok(port):
                return False
            alive = [n for n in nodes if n.port not in self.killed]
            if any(n.down or not n.connected for n in alive):
                return False
            ids = {n.id: n.port for n in nodes}
            views.add(frozenset((n.port, n.role, ids.get(n.master_id or "")) for n in alive))
            info = await self.node_command(port, "INFO", "replication")
            if "role:slave" in info and "master_link_status:up" not in info:
                return False
        return len(views) == 1

    async def _until(self, ready: Callable[[], Awaitable[bool]], what: str) -> None:
        with trio.move_on_after(WAIT_SECONDS):
            while True:
                for node in self.nodes:
                    if node.port not in self.killed and node.proc and node.proc.poll() is not None:
                        status = node.proc.returncode
                        raise RuntimeError(f"redis node {node.port} exited (status {status})")
                try:
                    if await ready():
                        return
                except (OSError, ConnectionError, RedisReplyError):
                    pass
                await trio.sleep(0.05)
        raise RuntimeError(f"timed out after {WAIT_SECONDS:g} s waiting for {what}")
