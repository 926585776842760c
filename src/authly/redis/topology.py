"""How the actor reaches Redis for each URL form: one server (``redis://``, ``rediss://``),
a master named by Sentinel (``redis+sentinel://``) or a Redis Cluster
(``redis://n1:6379,n2:6379,n3:6379/0``). Imported by the actor only; every function
here runs on the actor's asyncio loop except ``open_connections``.

A topology builds the redis-py client, sends one batch of commands as pipelines and
says which replies mean the connection (not the command) failed; the actor keeps the
rest: batching, deadlines, the error words, the observer.

Cluster specifics (redis-py's ``RedisCluster``):

- A batch becomes one pipeline per master that owns a key in it, sent concurrently;
  MOVED and ASK replies are followed by redis-py (one command at a time). Every key a
  script touches shares a hash tag (backends/redis.py), so each EVALSHA has one slot.
- Errors arrive per command: a dead master fails only the commands for its slots.
  Those (connection refused, timeout, CLUSTERDOWN, TRYAGAIN) mark the topology stale:
  ``reset`` then closes the client, and the next batch asks the cluster again
  (CLUSTER SLOTS) and so finds the replica promoted in the master's place.
- ``PING`` becomes CLUSTER INFO on every master: the cluster is usable only when all of
  them answer and say ``cluster_state:ok``.
- Retries are off (``Retry(NoBackoff(), 0)``): redis-py would otherwise sleep 250 ms
  and retry inside the request's budget; the supervisor probes and switches instead.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from authly.redis.url import RedisUrl

try:
    import redis.asyncio as redis_asyncio
    from redis.asyncio.cluster import ClusterNode, RedisCluster
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff
    from redis.exceptions import (
        AskError,
        ClusterDownError,
        RedisClusterException,
        RedisError,
        TryAgainError,
    )
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import TimeoutError as RedisTimeoutError
except ImportError:  # pragma: no cover - the actor refuses to start without redis-py
    pass


def make_client(url: RedisUrl, *, pool_size: int, connect_timeout: float, keepalive: bool,
                op_timeout: float) -> Any:  # fmt: skip
    """The redis-py client for ``url``: Redis, Redis via Sentinel, or RedisCluster."""
    options = {"connect_timeout": connect_timeout}
    kwargs: dict[str, Any] = url.client_kwargs(pool_size=pool_size, keepalive=keepalive, **options)
    if url.is_cluster:
        kwargs.pop("db")  # a cluster has database 0 only (url.py refuses another)
        # One extra connection per node beyond the actor's in-flight pipelines: for the
        # SCAN of a hand-back, which runs beside them.
        kwargs["max_connections"] = pool_size + 1
        nodes = [ClusterNode(host, port) for host, port in url.hosts]
        return RedisCluster(startup_nodes=nodes, retry=Retry(NoBackoff(), 0), **kwargs)
    retry: dict[str, Any] = {"retry": Retry(NoBackoff(), 1)}
    if url.sentinel_service is None:
        return redis_asyncio.Redis(host=url.host, port=url.port, **kwargs, **retry)
    # redis+sentinel://: the pool asks the sentinels for the master at each connect, so
    # once ``reset`` has run, the next call reaches the master elected since.
    sentinel_kwargs = {**url.sentinel_kwargs(read_timeout=op_timeout, **options), **retry}
    sentinels = redis_asyncio.Sentinel(url.hosts, sentinel_kwargs=sentinel_kwargs)  # type: ignore[no-untyped-call]
    return sentinels.master_for(url.sentinel_service, **kwargs, **retry)


async def close(client: Any) -> None:
    await client.aclose()
    pool = getattr(client, "connection_pool", None)
    sentinels = getattr(pool, "sentinel_manager", None)
    if sentinels is not None:  # redis+sentinel://: the sentinels' own connections
        await sentinels.aclose()


async def reset(client: Any) -> None:
    """Drop every connection (and, on a cluster, the slot map): the next call starts
    afresh, on the master the cluster or the sentinels name by then."""
    if isinstance(client, RedisCluster):
        await client.aclose()  # redis-py asks the cluster again on next use
    else:
        await client.connection_pool.disconnect()


def open_connections(client: Any) -> int:
    """Connections open right now, idle or lent (disconnected pooled ones not counted)."""
    if client is None:
        return 0
    if isinstance(client, RedisCluster):
        pooled = [c for node in client.get_nodes() for c in node._connections]
    else:
        pool = client.connection_pool
        pooled = [*pool._available_connections, *pool._in_use_connections]
    return sum(1 for c in pooled if getattr(c, "is_connected", False))


async def pipeline(client: Any, commands: Sequence[tuple[Any, ...]]) -> list[Any]:
    """Send ``commands`` as one non-transactional pipeline; a reply per command (an
    exception object where that command failed). Connection failures of a single
    server raise; a cluster's come back per command (see ``is_stale``)."""
    if not isinstance(client, RedisCluster):
        pipe = client.pipeline(transaction=False)
        for args in commands:
            pipe.execute_command(*args)
        return list(await pipe.execute(raise_on_error=False))
    return await _cluster_pipeline(client, commands)


async def _cluster_pipeline(client: Any, commands: Sequence[tuple[Any, ...]]) -> list[Any]:
    replies: list[Any] = [None] * len(commands)
    keyed = [i for i, args in enumerate(commands) if str(args[0]).upper() != "PING"]
    if len(keyed) < len(commands):
        pong = await _ping_masters(client)
        for i, args in enumerate(commands):
            if str(args[0]).upper() == "PING":
                replies[i] = pong
    if keyed:
        pipe = client.pipeline(transaction=False)
        for i in keyed:
            pipe.execute_command(*commands[i])
        try:
            results = await pipe.execute(raise_on_error=False)
        except RedisClusterException as exc:  # no reachable node knows the slots
            raise RedisConnectionError(f"Redis Cluster: {exc}") from None
        for i, result in zip(keyed, results, strict=True):
            replies[i] = result
    return replies


async def _ping_masters(client: Any) -> Any:
    """True when every master answers and says ``cluster_state:ok`` (CLUSTER INFO, which
    a node that just came back fails for a while though it answers PING); otherwise the
    first failure (an exception)."""
    try:
        if client._initialize:  # the slot map is gone (reset): ask the cluster again
            await client.initialize()
        masters = client.get_primaries()
        results = await asyncio.gather(
            *(client.execute_command("CLUSTER INFO", target_nodes=node) for node in masters),
            return_exceptions=True,
        )
    except (RedisError, RedisClusterException, OSError) as exc:
        return exc
    for node, result in zip(masters, results, strict=True):
        if isinstance(result, BaseException):
            return result
        state = result.get("cluster_state") if isinstance(result, dict) else str(result)
        if state != "ok":
            return ClusterDownError(f"CLUSTERDOWN {node.name} says cluster_state:{state}")
    return True if masters else RedisConnectionError("Redis Cluster has no master")


def is_stale(reply: Any) -> bool:
    """Whether a per-command reply says the connection or the slot map failed."""
    # AskError covers MovedError: a redirection redis-py could not follow.
    stale = (RedisConnectionError, RedisTimeoutError, OSError, RedisClusterException)
    return isinstance(reply, (*stale, ClusterDownError, TryAgainError, AskError))


async def scan(client: Any, match: str, count: int) -> list[str]:
    """Every key matching ``match``: over all masters on a cluster."""
    keys: list[str] = []
    async for key in client.scan_iter(match=match, count=count):
        keys.append(key.decode() if isinstance(key, bytes) else str(key))
    return keys


__all__ = ["close", "is_stale", "make_client", "open_connections", "pipeline", "reset", "scan"]
