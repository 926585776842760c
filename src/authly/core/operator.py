"""The operator's choice of backends (the guide's rollback without a restart).

``PUT /api/v1/admin/backends`` (and ``authly admin backends set``) pins Redis-enabled
features to their fallback (memory; the store for sessions), or releases them back to
Redis. The choice is kept in the store, so it survives a restart of any instance and
reaches every instance on the store: each supervisor reads it at start-up and at every
probe and makes the switches itself (reason ``operator``), with the usual carry-over.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable

from authly.metrics import FEATURES
from authly.store import deployment as deployment_repo
from authly.store.db import Database


async def read_pins(db: Database) -> frozenset[str]:
    """The features pinned to their fallback."""
    text = await db.run(deployment_repo.get, deployment_repo.PINNED_BACKENDS)
    if not text:
        return frozenset()
    return frozenset(f for f in json.loads(text) if f in FEATURES)


async def write_pins(db: Database, pins: Iterable[str]) -> frozenset[str]:
    chosen = frozenset(f for f in pins if f in FEATURES)
    value = json.dumps(sorted(chosen))
    await db.run(deployment_repo.put, deployment_repo.PINNED_BACKENDS, value, time.time())
    return chosen
