"""Admin API for the backends: ``GET /api/v1/admin/backends`` and
``PUT /api/v1/admin/backends`` (the guide's rollback without a restart).

``PUT`` takes ``{"rate_limit": "memory", "cache": "redis", ...}``: ``memory`` pins a
Redis-enabled feature to its fallback (memory; the store for sessions), ``redis``
releases it. The choice goes to the store (core/operator.py); this instance's
supervisor applies it at its next probe, as every other instance's does, and the answer
waits (bounded) until this instance has. A feature this instance does not have on Redis
(``AUTHLY_REDIS_URL`` unset or its flag false) cannot be sent to Redis: 409.
"""

from __future__ import annotations

import logging
from typing import Any

import trio
from quart import Response, g

from authly.core import operator
from authly.errors import Conflict, InvalidRequest
from authly.metrics import FEATURES
from authly.services import Services
from authly.users.admin_auth import AdminPrincipal
from authly.web.admin import bp
from authly.web.context import services
from authly.web.parsing import read_json_object
from authly.web.render import NO_STORE, json_response

log = logging.getLogger("authly.admin")

CHOICES = ("redis", "memory")
APPLY_WAIT = 10.0  # seconds the answer waits for this instance's supervisor

FLAG = {
    "rate_limit": "AUTHLY_REDIS_RATE_LIMIT",
    "cache": "AUTHLY_REDIS_CACHE",
    "session": "AUTHLY_REDIS_SESSION",
}


def _state(s: Services, pinned: frozenset[str]) -> dict[str, Any]:
    redis = s.settings.redis
    return {
        "features": {
            slot.feature: {
                "configured": redis.uses_redis(slot.feature),
                "pinned": slot.feature in pinned,
                "backend": slot.backend_name,
            }
            for slot in s.slots()
        },
        "redis": {"available": s.supervisor.available if s.supervisor else False},
    }


@bp.get("/backends")
async def show_backends() -> Response:
    s = services()
    return json_response(_state(s, await operator.read_pins(s.db)), headers=NO_STORE)


@bp.put("/backends")
async def set_backends() -> Response:
    body = await read_json_object()
    if not body:
        raise InvalidRequest("Name at least one feature: rate_limit, cache or session.")
    s = services()
    pins = set(await operator.read_pins(s.db))
    for feature, choice in body.items():
        if feature not in FEATURES:
            raise InvalidRequest(f"Unknown feature {feature!r}: rate_limit, cache or session.")
        if choice not in CHOICES:
            raise InvalidRequest(f"{feature}: the backend must be 'redis' or 'memory'.")
        if choice == "redis" and not s.settings.redis.uses_redis(feature):
            raise Conflict(
                f"{feature} is not on Redis on this instance (AUTHLY_REDIS_URL and"
                f" {FLAG[feature]} decide that at start-up); only the fallback is possible."
            )
        (pins.add if choice == "memory" else pins.discard)(feature)
    chosen = await operator.write_pins(s.db, pins)
    principal: AdminPrincipal = g.admin
    log.info(
        "admin %s set the backends: %s (pinned to their fallback: %s)",
        principal.user.username,
        ", ".join(f"{f}={c}" for f, c in sorted(body.items())),
        ", ".join(sorted(chosen)) or "none",
    )
    supervisor = s.supervisor
    if supervisor is not None:
        wanted = chosen & supervisor.features
        with trio.move_on_after(APPLY_WAIT):
            while supervisor.pinned != wanted:
                await supervisor.wait_for_probes(supervisor.probes + 1)
    return json_response(_state(s, chosen), headers=NO_STORE)
