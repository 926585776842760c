"""The Redis client actor: the only module that imports redis-py and trio-asyncio.

One Trio task opens a trio-asyncio loop and owns the redis-py client. Callers put a
command on a memory channel and wait for its result with a deadline; a dispatcher
drains whatever is queued and sends it as ONE non-transactional pipeline
(auto-pipelining), with at most AUTHLY_REDIS_POOL_SIZE pipelines in flight, then hands
each caller its own result or error.

Why: a per-call trio-asyncio bridge tops out at ≈ 4k ops/s on this class of machine;
batching through one actor reaches ≈ 20k+ (DESIGN §1). And the hypercorn CLI gives
request tasks no asyncio loop, so asyncio may only run inside this task.

Error handling: connection errors, timeouts, a missed caller deadline and replies that
mean Redis refuses us (``WRONGPASS``, ``NOAUTH``, ``NOPERM``, ``LOADING``, ...) become
``BackendUnavailable`` whose message says why, password masked (``WRONGPASS invalid
username-password pair ...``, ``ConnectionError: Error 111 connecting to ...``, ``Redis did
not answer within 250 ms``); the actor calls nobody back: whoever called decides what a
failure means (the slots trip their breaker, the supervisor probes). Any other error
reply to one command becomes ``RedisCommandError`` for that caller only. Cancelling a
caller abandons its call: the worker skips it or drops its reply, so the connection never
gets out of step.

Measuring: the actor reports to a ``RedisObserver`` (redis/observer.py) each command
(lower-case name), each pipeline's size, each reply's send-to-reply time and each failed
call's kind; ``statistics()`` gives the open and lent connections, read at each scrape.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import outcome
import trio

from authly.errors import BackendUnavailable
from authly.redis.errors import (
    ConnectionLost,
    RedisCommandError,
    connection_lost,
    describe,
    error_kind,
    reply_error,
    with_kind,
)
from authly.redis.observer import RedisObserver
from authly.redis.scripts import SCRIPTS, Script, load_script
from authly.redis.url import RedisUrl, mask_password

log = logging.getLogger("authly.redis")

try:  # the [redis] extra is optional; without it Authly runs on memory backends
    import trio_asyncio
    from redis.exceptions import AuthenticationError as RedisAuthenticationError
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import NoScriptError, RedisError, ResponseError
    from redis.exceptions import TimeoutError as RedisTimeoutError

    from authly.redis import topology

    REDIS_AVAILABLE = True
except ImportError:  # pragma: no cover - exercised by the "dependency missing" test
    REDIS_AVAILABLE = False

MAX_BATCH = 512
QUEUE_SIZE = 65_536


class _Call:
    __slots__ = ("abandoned", "args", "direct", "done", "result", "script")

    def __init__(
        self,
        args: tuple[Any, ...],
        script: Script | None,
        direct: Callable[[Any], Awaitable[Any]] | None = None,
    ) -> None:
        self.args = args
        self.script = script
        self.direct = direct  # run with the client, outside the pipelines (SCAN)
        self.done = trio.Event()
        self.result: outcome.Outcome[Any] | None = None
        self.abandoned = False

    def fulfil(self, result: outcome.Outcome[Any]) -> None:
        if self.result is None:
            self.result = result
            self.done.set()


@dataclass(frozen=True)
class ActorStatistics:
    queued: int
    connections: int  # open (connected) connections, idle or lent
    calls: int
    batches: int
    failures: int
    in_use: int = 0  # connections lent to a pipeline right now


class RedisActor:
    """Owns the redis-py client; start ``run`` in a nursery, then ``execute`` commands."""

    def __init__(
        self,
        url: RedisUrl,
        *,
        pool_size: int = 10,
        connect_timeout: float = 5.0,
        keepalive: bool = True,
        op_timeout: float = 0.25,
        on_command: Callable[[str], None] | None = None,
        observer: RedisObserver | None = None,
    ) -> None:
        if not REDIS_AVAILABLE:
            raise BackendUnavailable("Redis dependency not available")
        self.url = url
        self.pool_size = pool_size
        self.connect_timeout = connect_timeout
        self.keepalive = keepalive
        self.op_timeout = op_timeout
        self.on_command = on_command  # called with each command's lower-case name
        self.observer = observer if observer is not None else RedisObserver()
        self.scripts = {name: load_script(name) for name in SCRIPTS}
        self._send, self._receive = trio.open_memory_channel[_Call](QUEUE_SIZE)
        self._client: Any = None
        self._calls = self._batches = self._failures = 0
        self._in_use = 0

    # ---- caller side -------------------------------------------------------------

    async def execute(self, *args: Any, timeout: float | None = None) -> Any:
        """Send one command, e.g. ``await actor.execute("GET", key)``."""
        return await self._submit(_Call(args, None), timeout)

    async def run_script(
        self, name: str, keys: Sequence[str], args: Sequence[Any], *, timeout: float | None = None
    ) -> Any:
        """EVALSHA a bundled script; reloaded transparently after NOSCRIPT."""
        script = self.scripts[name]
        call = _Call(("EVALSHA", script.sha, len(keys), *keys, *args), script)
        return await self._submit(call, timeout)

    async def scan(
        self, match: str, *, count: int = 500, timeout: float | None = None
    ) -> list[str]:
        """Every key matching ``match`` (SCAN; on each master of a cluster), sent on its
        own rather than in a pipeline: for the rare hand-back of a feature's sessions."""

        async def keys(client: Any) -> list[str]:
            return await topology.scan(client, match, count)

        result: list[str] = await self._submit(_Call(("SCAN",), None, keys), timeout)
        return result

    async def _submit(self, call: _Call, timeout: float | None) -> Any:
        try:
            self._send.send_nowait(call)
        except trio.WouldBlock:
            self.observer.error("overload")
            raise self._fail(BackendUnavailable("Redis request queue is full")) from None
        except (trio.ClosedResourceError, trio.BrokenResourceError):
            self.observer.error("other")
            raise BackendUnavailable("Redis client is not running") from None
        self._calls += 1
        deadline = self.op_timeout if timeout is None else timeout
        with trio.move_on_after(deadline):
            try:
                await call.done.wait()
            finally:
                if call.result is None:
                    call.abandoned = True
        if call.result is None:
            self.observer.error("timeout")
            message = f"Redis did not answer within {deadline * 1000:.0f} ms"
            raise self._fail(BackendUnavailable(message))
        if isinstance(call.result, outcome.Error):
            self.observer.error(error_kind(call.result.error))
            if isinstance(call.result.error, BackendUnavailable):
                self._failures += 1
        return call.result.unwrap()

    def _fail(self, error: BackendUnavailable) -> BackendUnavailable:
        """Count a failure (statistics only: the caller decides what it means)."""
        self._failures += 1
        return error

    def describe(self, exc: BaseException) -> str:
        """Why a call failed, in Redis's words where it gave some; password masked.

        ``WRONGPASS invalid username-password pair or user is disabled.``,
        ``NOPERM this user has no permissions to run the 'ping' command``,
        ``ConnectionError: Error 111 connecting to 127.0.0.1:6379. Connection refused.``
        """
        return describe(exc, self.url.mask)

    def statistics(self) -> ActorStatistics:
        """Read at each scrape: ``connections`` counts the pool's connections that are
        open right now (after a failure the pool keeps disconnected ones: not counted)."""
        return ActorStatistics(
            queued=self._receive.statistics().current_buffer_used,
            connections=topology.open_connections(self._client),
            calls=self._calls,
            batches=self._batches,
            failures=self._failures,
            in_use=self._in_use,
        )

    # ---- actor side ----------------------------------------------------------------

    async def run(
        self, *, task_status: trio.TaskStatus[trio.CancelScope] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Own the asyncio loop and the client until cancelled; hands back its scope."""
        with trio.CancelScope() as scope:
            await self._run(scope, task_status)

    async def _run(self, scope: trio.CancelScope, task_status: Any) -> None:
        async with trio_asyncio.open_loop():
            self._client = topology.make_client(
                self.url,
                pool_size=self.pool_size,
                connect_timeout=self.connect_timeout,
                keepalive=self.keepalive,
                op_timeout=self.op_timeout,
            )
            try:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self._dispatch, nursery)
                    task_status.started(scope)
            finally:
                self._send.close()
                with trio.CancelScope(shield=True), trio.move_on_after(1):
                    await trio_asyncio.aio_as_trio(topology.close)(self._client)
                self._fail_pending()

    def _fail_pending(self) -> None:
        while True:
            try:
                call = self._receive.receive_nowait()
            except (trio.WouldBlock, trio.EndOfChannel, trio.ClosedResourceError):
                return
            call.fulfil(outcome.Error(BackendUnavailable("Redis client stopped")))

    async def _dispatch(self, nursery: trio.Nursery) -> None:
        """Drain the queue into pipelines, at most ``pool_size`` in flight.

        A slot is taken *before* draining, so while every connection is busy the queue
        fills up and the next pipeline carries all of it: batches grow with load, and
        an idle system still sends a lone command at once.
        """
        in_flight = trio.Semaphore(self.pool_size)
        while True:
            first = await self._receive.receive()
            await in_flight.acquire()
            batch = [first]
            while len(batch) < MAX_BATCH:
                try:
                    batch.append(self._receive.receive_nowait())
                except trio.WouldBlock:
                    break
            live = [c for c in batch if not c.abandoned]
            for call in [c for c in live if c.direct is not None]:
                live.remove(call)
                nursery.start_soon(self._run_direct, call)
            if live:
                nursery.start_soon(self._send_and_release, live, in_flight)
            else:
                in_flight.release()

    async def _run_direct(self, call: _Call) -> None:
        assert call.direct is not None
        self.observer.command(str(call.args[0]).lower())
        try:
            with trio.fail_after(self.connect_timeout + 30):  # a hang detector
                result = await trio_asyncio.aio_as_trio(call.direct)(self._client)
        except (trio.TooSlowError, RedisError, OSError) as exc:
            call.fulfil(outcome.Error(with_kind(BackendUnavailable(self.describe(exc)), "other")))
        else:
            call.fulfil(outcome.Value(result))

    async def _send_and_release(self, calls: list[_Call], in_flight: trio.Semaphore) -> None:
        try:
            await self._send_batch(calls)
        finally:
            in_flight.release()

    async def _send_batch(self, calls: list[_Call]) -> None:
        self._batches += 1
        try:
            replies = await self._pipeline([c.args for c in calls])
        except BackendUnavailable as exc:
            for call in calls:
                call.fulfil(outcome.Error(exc))
            return
        retry: list[_Call] = []
        for call, reply in zip(calls, replies, strict=True):
            if isinstance(reply, NoScriptError) and call.script is not None:
                retry.append(call)
            else:
                call.fulfil(self._outcome(reply))
        if retry:
            await self._reload_and_retry(retry)

    async def _reload_and_retry(self, calls: list[_Call]) -> None:
        """After a Redis restart the script cache is empty: SCRIPT LOAD, then EVALSHA
        again. On a cluster, SCRIPT LOAD would need every master: EVAL the source
        instead, which also loads it on the master that owns the key."""
        scripts = {c.script.name: c.script for c in calls if c.script is not None}
        commands: list[tuple[Any, ...]]
        if self.url.is_cluster:
            scripts = {}
            commands = [("EVAL", c.script.source, *c.args[2:]) for c in calls if c.script]
        else:
            commands = [("SCRIPT", "LOAD", s.source) for s in scripts.values()]
            commands += [c.args for c in calls]
        try:
            replies = await self._pipeline(commands)
        except BackendUnavailable as exc:
            for call in calls:
                call.fulfil(outcome.Error(exc))
            return
        for call, reply in zip(calls, replies[len(scripts) :], strict=True):
            call.fulfil(self._outcome(reply))

    def _outcome(self, reply: Any) -> outcome.Outcome[Any]:
        if not isinstance(reply, Exception):
            return outcome.Value(reply)
        return outcome.Error(reply_error(reply, self.url.mask))

    async def _node_failed(self, replies: list[Any]) -> list[Any]:
        """A cluster node failed some commands of a batch (the others were answered):
        those callers get ConnectionLost, and the next batch maps the cluster anew."""
        await self._drop_connections()
        return [self._lost(r) if topology.is_stale(r) else r for r in replies]

    def _lost(self, exc: BaseException) -> ConnectionLost:
        return connection_lost(exc, self.url.mask, auth=isinstance(exc, RedisAuthenticationError))

    async def _drop_connections(self) -> None:
        with trio.move_on_after(1):
            await trio_asyncio.aio_as_trio(topology.reset)(self._client)

    async def _pipeline(self, commands: Sequence[tuple[Any, ...]]) -> list[Any]:
        operations = [str(args[0]).lower() for args in commands]
        observer = self.observer
        observer.pipeline(len(operations))
        for operation in operations:
            observer.command(operation)
            if self.on_command is not None:
                self.on_command(operation)
        # Long enough to connect; callers give up at their own (shorter) deadline anyway.
        deadline = self.connect_timeout + self.op_timeout
        self._in_use += 1  # the pipeline holds one connection while it runs
        try:
            with trio.fail_after(deadline):
                sent = trio.current_time()
                result: list[Any] = await trio_asyncio.aio_as_trio(topology.pipeline)(
                    self._client, commands
                )
                observer.replied(operations, trio.current_time() - sent)
            if any(topology.is_stale(reply) for reply in result):
                result = await self._node_failed(result)
            return result
        except trio.TooSlowError:
            message = f"Redis did not answer within {deadline * 1000:.0f} ms"
            raise with_kind(BackendUnavailable(message), "timeout") from None
        except (RedisConnectionError, OSError) as exc:
            # The server went away (or refused us at connect: AUTH, TLS): every pooled
            # connection is suspect (after a restart each would fail once more), so drop
            # them all and reconnect on next use.
            await self._drop_connections()
            raise self._lost(exc) from None
        except RedisTimeoutError as exc:
            raise with_kind(BackendUnavailable(self.describe(exc)), "timeout") from None
        except ResponseError as exc:  # pragma: no cover - replies carry errors per command
            raise RedisCommandError(self.describe(exc)) from None
        except RedisError as exc:
            raise BackendUnavailable(self.describe(exc)) from None
        finally:
            self._in_use -= 1


def redis_dependency_available() -> bool:
    return REDIS_AVAILABLE


__all__ = [
    "ActorStatistics",
    "ConnectionLost",
    "RedisActor",
    "RedisCommandError",
    "RedisObserver",
    "error_kind",
    "load_script",
    "mask_password",
    "redis_dependency_available",
]
