"""Redis implementations of the backend protocols, over the client actor.

Only the supervisor (and its helper backends/reconcile.py) imports this module. Every
method either answers or raises BackendUnavailable (the slot then answers from memory;
replies that mean Redis refuses us, such as NOPERM or WRONGPASS, count as that); other
Redis error replies surface as RedisCommandError, which is a bug, not an outage, and
propagates.

Keys (all under ``authly:``): ``rl:<key>`` sorted set per rate-limit window,
``cache:<key>`` string, ``sess:<id>`` hash, ``pool:<name>`` sorted set of the session
keys in a bounded pool (by expiry), ``instances`` heartbeat sorted set, ``epoch`` marker.

On a Redis Cluster every Lua script must touch one hash slot, so the keys one script
touches together share a hash tag: sessions and their pools are ``authly:{s}:sess:<id>``
and ``authly:{s}:pool:<name>`` (a pool's eviction deletes other sessions' hashes), the
heartbeat's are ``authly:{fleet}:instances`` and ``authly:{fleet}:epoch``. Rate-limit
windows and cache entries are one key per call and spread over every master. The plain
names stay on a single server, so upgrading does not orphan what Redis holds.
"""

from __future__ import annotations

import itertools
import os
import secrets

from authly.backends.protocols import Decision
from authly.redis.actor import RedisActor

PREFIX = "authly:"
SESSION_TAG, FLEET_TAG = "{s}:", "{fleet}:"
_SESSION_MARK = "__authly__"
_US = 1_000_000


def _prefix(actor: RedisActor, tag: str) -> str:
    return PREFIX + tag if actor.url.is_cluster else PREFIX


def fleet_keys(actor: RedisActor) -> list[str]:
    """The heartbeat script's keys: the instances sorted set and the epoch marker."""
    prefix = _prefix(actor, FLEET_TAG)
    return [prefix + "instances", prefix + "epoch"]


class RedisRateLimiter:
    """Sliding window log: one atomic Lua call per decision, Redis TIME as the clock."""

    name = "redis"

    def __init__(self, actor: RedisActor) -> None:
        self._actor = actor
        self._instance = f"{os.getpid()}.{secrets.token_hex(4)}"
        self._ids = itertools.count()

    def _key(self, key: str) -> str:
        return f"{PREFIX}rl:{key}"

    async def check_rate_limit(
        self, key: str, max_requests: int, window_seconds: float
    ) -> Decision:
        suffix = f"{self._instance}.{next(self._ids)}"
        allowed, count, retry_us, member = await self._actor.run_script(
            "sliding_window",
            [self._key(key)],
            [int(window_seconds * _US), max_requests, suffix],
        )
        if int(allowed) == 1:
            return Decision(True, max(0, max_requests - int(count)), 0.0, str(member))
        return Decision(False, 0, max(0, int(retry_us)) / _US)

    async def refund(self, key: str, member: str) -> None:
        await self._actor.execute("ZREM", self._key(key), member)

    async def merge(self, key: str, window_seconds: float, hits: list[tuple[float, str]]) -> None:
        """Add hits recorded elsewhere, given as (age in seconds, member)."""
        args: list[object] = [int(window_seconds * _US)]
        for age, member in hits:
            args += [int(age * _US), member]
        await self._actor.run_script("merge_window", [self._key(key)], args)


class RedisCache:
    name = "redis"

    def __init__(self, actor: RedisActor) -> None:
        self._actor = actor

    async def get(self, key: str) -> str | None:
        value = await self._actor.execute("GET", PREFIX + "cache:" + key)
        return None if value is None else str(value)

    async def set(self, key: str, value: str, ttl: float) -> None:
        await self._actor.execute("SET", PREFIX + "cache:" + key, value, "PX", _ms(ttl))

    async def delete(self, key: str) -> None:
        await self._actor.execute("DEL", PREFIX + "cache:" + key)

    async def exists(self, key: str) -> bool:
        return int(await self._actor.execute("EXISTS", PREFIX + "cache:" + key)) == 1


class RedisSessionStore:
    """One hash per session (HSET + PEXPIRE in one script) so fields stay inspectable."""

    name = "redis"

    def __init__(self, actor: RedisActor) -> None:
        self._actor = actor
        prefix = _prefix(actor, SESSION_TAG)
        self._sess, self._pool = prefix + "sess:", prefix + "pool:"

    async def get(self, session_id: str) -> dict[str, str] | None:
        data = await self._actor.execute("HGETALL", self._sess + session_id)
        if not data:
            return None
        data.pop(_SESSION_MARK, None)
        return {str(k): str(v) for k, v in data.items()}

    async def set(self, session_id: str, data: dict[str, str], ttl: float) -> None:
        # A marker field keeps an empty session representable (HSET needs a pair).
        args: list[object] = [_ms(ttl), _SESSION_MARK, "1"]
        for field, value in data.items():
            args += [field, value]
        await self._actor.run_script("session_set", [self._sess + session_id], args)

    async def add(
        self, session_id: str, data: dict[str, str], ttl: float, *, pool: str, max_entries: int
    ) -> int:
        args: list[object] = [_ms(ttl), max_entries, _SESSION_MARK, "1"]
        for field, value in data.items():
            args += [field, value]
        keys = [self._sess + session_id, self._pool + pool]
        return int(await self._actor.run_script("session_add", keys, args))

    async def delete(self, session_id: str) -> None:
        await self._actor.execute("DEL", self._sess + session_id)

    async def take(self, session_id: str, *, pool: str | None = None) -> dict[str, str] | None:
        keys = [self._sess + session_id]
        if pool is not None:
            keys.append(self._pool + pool)
        flat = await self._actor.run_script("session_take", keys, [])
        if not flat:
            return None
        data = {str(flat[i]): str(flat[i + 1]) for i in range(0, len(flat) - 1, 2)}
        data.pop(_SESSION_MARK, None)
        return data

    async def touch(self, session_id: str, ttl: float) -> bool:
        return int(await self._actor.execute("PEXPIRE", self._sess + session_id, _ms(ttl))) == 1

    async def export_all(self, batch: int = 500) -> list[tuple[str, dict[str, str], float]]:
        """Every session as (id, data, remaining ttl in seconds), by SCAN: for handing
        the feature back to its fallback when the operator pins it there."""
        found: list[tuple[str, dict[str, str], float]] = []
        prefix = self._sess  # a hash tag's braces are no glob characters to Redis
        for name in await self._actor.scan(prefix + "*", count=batch, timeout=30.0):
            session_id = name[len(prefix) :]
            data = await self.get(session_id)
            ttl_ms = int(await self._actor.execute("PTTL", name))
            if data is not None and ttl_ms > 0:
                found.append((session_id, data, ttl_ms / 1000))
        return found


def _ms(seconds: float) -> int:
    return max(1, int(seconds * 1000))
