"""`/health`: 200 while the store answers, 503 when it does not (DESIGN §7); and the
probes for orchestrators:

- `/health/live` (liveness): 200 `{"status": "alive"}` whenever the process answers; it
  reads neither the store nor Redis, so a slow store never gets a process restarted;
- `/health/ready` (readiness): 200 `{"status": "ready"}` once start-up has finished and
  while the store answers (the same probe as `/health`, reused for PROBE_REUSE seconds);
  otherwise 503 `{"status": "not_ready", "reason": ...}` with the reason `starting`,
  `stopping` or `store_unavailable`. Redis never makes an instance unready: every
  feature keeps serving from its fallback while Redis is away.
"""

from __future__ import annotations

from typing import Any

import trio
from quart import Blueprint, Response, current_app

from authly import __version__
from authly.errors import StoreError
from authly.metrics import FEATURES
from authly.services import EXTENSION_KEY, STOPPING_KEY
from authly.web.context import services
from authly.web.render import json_response

bp = Blueprint("health", __name__)

STORE_PROBE_TIMEOUT = 2.0
PROBE_REUSE = 0.25
PROBE_KEY = "authly_store_probe"
NO_STORE = {"Cache-Control": "no-store"}


def _ping(conn: object) -> int:
    return int(conn.execute("SELECT 1").fetchone()[0])  # type: ignore[attr-defined]


async def store_available() -> bool:
    """Whether the store answered a probe within the last PROBE_REUSE seconds.

    A load balancer may poll /health hundreds of times a second; one probe per
    PROBE_REUSE is enough to report the store, and keeps /health off the store thread.
    """
    if not services().db.is_open:
        return False
    probe = _probe_state()
    now = trio.current_time()
    if now - probe[1] < PROBE_REUSE:
        return probe[0]
    ok = False
    with trio.move_on_after(STORE_PROBE_TIMEOUT):
        try:
            ok = await services().db.run(_ping) == 1
        except StoreError:
            ok = False
    current_app.extensions[PROBE_KEY] = (ok, trio.current_time())
    return ok


def _probe_state() -> tuple[bool, float]:
    return current_app.extensions.get(PROBE_KEY, (False, float("-inf")))  # type: ignore[no-any-return]


def _last_error() -> dict[str, Any] | None:
    """The last Redis failure ({"time", "error"}, password masked), also when Redis was
    never reachable; None when there was none."""
    s = services()
    if s.supervisor is not None and s.supervisor.last_error is not None:
        return s.supervisor.last_error.as_json()
    if s.redis_error is not None:  # Redis was never tried (redis-py missing)
        return s.redis_error.as_json()
    return None


@bp.get("/health")
async def health() -> Response:
    s = services()
    db_ok = await store_available()
    redis = s.settings.redis
    supervisor = s.supervisor
    backends = {slot.feature: slot.backend_name for slot in s.slots()}
    features = {f: redis.uses_redis(f) for f in FEATURES}
    pinned = sorted(supervisor.pinned) if supervisor else []
    # A feature the operator pinned to its fallback is where it was asked to be.
    degraded = any(features[f] and f not in pinned and backends[f] != "redis" for f in FEATURES)
    status = "unhealthy" if not db_ok else ("degraded" if degraded else "healthy")
    body = {
        "status": status,
        "version": __version__,
        "database": {
            "available": db_ok,
            "backend": s.db.backend,
            "url": s.db.masked_url(),
            "pool": s.db.stats(),
        },
        "redis": {
            "available": supervisor.available if supervisor else False,
            "url": redis.url.masked() if redis.url else None,
            "features": features,
            "backends": backends,
            "pinned": pinned,
            "last_switch": (
                supervisor.last_switch.as_json() if supervisor and supervisor.last_switch else None
            ),
            "last_error": _last_error(),
        },
    }
    return json_response(body, 200 if db_ok else 503, {"Cache-Control": "no-store"})


@bp.get("/health/live")
async def live() -> Response:
    return json_response({"status": "alive"}, 200, NO_STORE)


@bp.get("/health/ready")
async def ready() -> Response:
    if EXTENSION_KEY not in current_app.extensions:
        reason = "stopping" if current_app.extensions.get(STOPPING_KEY) else "starting"
    elif not await store_available():
        reason = "store_unavailable"
    else:
        return json_response({"status": "ready"}, 200, NO_STORE)
    return json_response({"status": "not_ready", "reason": reason}, 503, NO_STORE)
