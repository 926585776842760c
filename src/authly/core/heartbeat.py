"""Instances sharing a store, counted without Redis: the memory rate limiter's budget.

Without Redis rate limiting, each worker process (and each instance) enforces limits in
its own memory. So that the deployment as a whole stays within a limit, never above it,
each divides the budget by the instances alive on the store (DESIGN §5, as during a
Redis outage): every ``interval`` seconds this task records the instance's heartbeat
in the store and pushes the count of instances seen within ``3 * interval`` to the
rate-limit slot. An instance that stops is counted until its heartbeat ages out, which
only makes the others stricter for a moment. The task owns its cancel scope; a store
error is logged and the last count kept.
"""

from __future__ import annotations

import contextlib
import logging
import time
import uuid
from collections.abc import Callable

import trio

from authly.backends.slot import RateLimiterSlot
from authly.errors import StoreError
from authly.store import sessions as repo
from authly.store.db import Database

log = logging.getLogger("authly.heartbeat")

INTERVAL = 1.0


class StoreHeartbeat:
    def __init__(
        self,
        db: Database,
        rate_limit: RateLimiterSlot,
        *,
        interval: float = INTERVAL,
        on_count: Callable[[int], None] | None = None,
        now: Callable[[], float] = time.time,
    ) -> None:
        self.instance_id = uuid.uuid4().hex
        self._db = db
        self._rate_limit = rate_limit
        self._interval = interval
        self._on_count = on_count
        self._now = now
        self.instances = 1

    async def beat(self) -> int:
        """Record one heartbeat and push the count; returns it."""
        try:
            count = await self._db.run(
                repo.heartbeat, self.instance_id, self._now(), 3 * self._interval
            )
        except StoreError as exc:
            log.warning("instance heartbeat failed, keeping %d: %s", self.instances, exc)
            return self.instances
        if count != self.instances:
            log.info("%d instances share the store's rate limits", count)
        self.instances = count
        self._rate_limit.instances = count
        if self._on_count is not None:
            self._on_count(count)
        return count

    async def run(self, *, task_status: trio.TaskStatus[trio.CancelScope]) -> None:
        with trio.CancelScope() as scope:
            await self.beat()
            task_status.started(scope)
            try:
                while True:
                    await trio.sleep(self._interval)
                    await self.beat()
            finally:
                # Leave at once (or age out by itself if the store is gone).
                shielded = trio.CancelScope(shield=True)
                with shielded, trio.move_on_after(1), contextlib.suppress(StoreError):
                    await self._db.run(repo.leave, self.instance_id)
