"""Part c of scripts/bench_redis.py: Redis memory per stored session. Sessions with a
realistic payload are stored through RedisSessionStore; the table gives MEMORY USAGE of a
sample of keys (average) and the growth of ``used_memory`` per session."""

from __future__ import annotations

import argparse
import secrets
import time
import uuid
from dataclasses import dataclass

import trio

from authly.backends.redis import PREFIX, RedisSessionStore
from authly.redis.actor import RedisActor
from authly.redis.url import parse_redis_url
from benchkit.common import table

SESSION_TTL = 3600.0


def session_payload() -> dict[str, str]:
    return {
        "user_id": str(uuid.uuid4()),
        "csrf_token": secrets.token_urlsafe(32),
        "created_at": str(int(time.time())),
        "client_id": "web-dashboard",
        "redirect_uri": "https://app.example.com/oauth/callback",
        "scope": "openid profile email offline_access",
        "state": secrets.token_urlsafe(24),
        "code_challenge": secrets.token_urlsafe(32),  # 43 chars, like a S256 challenge
    }


@dataclass
class SessionResult:
    sessions: int
    sampled: int
    memory_usage_avg: float
    used_memory_per_session: float
    payload_bytes: int
    fields: int
    encoding: str


async def part_c(opts: argparse.Namespace, redis_url: str) -> SessionResult:
    actor = RedisActor(parse_redis_url(redis_url), pool_size=opts.pool_size, op_timeout=5.0)
    async with trio.open_nursery() as nursery:
        scope = await nursery.start(actor.run)
        store = RedisSessionStore(actor)
        await store.set("warmup", {"a": "b"}, 60)  # SCRIPT LOAD outside the measurement
        await actor.execute("DEL", PREFIX + "sess:warmup")

        async def used_memory() -> int:
            info = await actor.execute("INFO", "memory", timeout=5.0)
            return int(info["used_memory"]) if isinstance(info, dict) else 0

        before = await used_memory()
        ids = [f"bench-{uuid.uuid4()}" for _ in range(opts.sessions)]
        payload_bytes = 0
        fields = 0
        for session_id in ids:
            data = session_payload()
            payload_bytes += sum(len(k) + len(v) for k, v in data.items())
            fields = len(data)
            await store.set(session_id, data, SESSION_TTL)
        after = await used_memory()
        sample = ids[:: max(1, len(ids) // opts.session_sample)]
        usages = [
            int(await actor.execute("MEMORY", "USAGE", PREFIX + "sess:" + sid, "SAMPLES", "0"))
            for sid in sample
        ]
        encoding = str(await actor.execute("OBJECT", "ENCODING", PREFIX + "sess:" + ids[0]))
        for start in range(0, len(ids), 500):
            await actor.execute(
                "DEL", *[PREFIX + "sess:" + sid for sid in ids[start : start + 500]]
            )
        scope.cancel()
    return SessionResult(
        sessions=len(ids),
        sampled=len(usages),
        memory_usage_avg=sum(usages) / len(usages),
        used_memory_per_session=(after - before) / len(ids),
        payload_bytes=round(payload_bytes / len(ids)),
        fields=fields,
        encoding=encoding,
    )


def section(opts: argparse.Namespace, s: SessionResult) -> list[str]:
    """Part c's table with its heading and what the payload holds."""
    md = opts.markdown
    rows = [
        [
            str(s.sessions),
            f"{s.fields} (+1 marker)",
            str(s.payload_bytes),
            s.encoding,
            f"{s.memory_usage_avg:.0f} (avg of {s.sampled})",
            f"{s.used_memory_per_session:.0f}",
        ]
    ]
    headers = ["sessions", "fields", "payload bytes", "encoding", "MEMORY USAGE bytes"]
    return [
        "**c. Redis memory per stored session**" if md else "c. Redis memory per session",
        "",
        *table([*headers, "used_memory growth / session"], rows, md),
        "",
        "Payload: user_id (uuid4), csrf_token, created_at, client_id, redirect_uri, scope, "
        "state, code_challenge; stored by RedisSessionStore.set (one hash + PEXPIRE).",
    ]
