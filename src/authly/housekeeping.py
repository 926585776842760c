"""The housekeeping task: purges the store's expired rows (store/purge.py).

It runs in the app's nursery for the life of the server, owns its cancel scope (handed
back through ``task_status.started``), purges once right after start and then every
``AUTHLY_PURGE_INTERVAL`` seconds (0: never). Each kind is purged in batches, with a
checkpoint between batches, so requests keep flowing and the store's write lock is
never held for long. Several instances on one store may purge at once: every batch is
its own transaction and deleting is idempotent. A store error is logged and the next
pass tries again; it never stops the server.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import trio

from authly.errors import StoreError
from authly.store.db import Database
from authly.store.purge import KINDS, purge_batch

log = logging.getLogger("authly.housekeeping")

BATCH = 500


class Housekeeper:
    def __init__(
        self,
        db: Database,
        *,
        interval: float,
        on_purged: Callable[[str, int], None],
        now: Callable[[], float] = time.time,
    ) -> None:
        self._db = db
        self._interval = interval
        self._on_purged = on_purged
        self._now = now
        self.passes = 0
        self._pass_done = trio.Event()

    async def run(self, *, task_status: trio.TaskStatus[trio.CancelScope]) -> None:
        with trio.CancelScope() as scope:
            task_status.started(scope)
            while True:
                await self.purge_once()
                await trio.sleep(self._interval)

    async def purge_once(self) -> dict[str, int]:
        """One pass over every kind; returns the rows deleted per kind."""
        now = self._now()
        purged: dict[str, int] = {}
        try:
            for kind in KINDS:
                purged[kind] = 0
                while True:
                    deleted = await self._db.run(purge_batch, kind, now, BATCH)
                    purged[kind] += deleted
                    if deleted:
                        self._on_purged(kind, deleted)
                    if deleted < BATCH:
                        break
                    await trio.lowlevel.checkpoint()
        except StoreError as exc:
            log.warning("purge of expired rows failed, will retry: %s", exc)
        if any(purged.values()):
            log.info(
                "purged expired rows: %s", ", ".join(f"{k}={n}" for k, n in purged.items() if n)
            )
        self.passes += 1
        self._pass_done.set()
        self._pass_done = trio.Event()
        return purged

    async def wait_pass(self, passes: int) -> None:
        """Wait until at least ``passes`` passes have completed."""
        while self.passes < passes:
            await self._pass_done.wait()
