"""``GET /status``: one HTML page for the operator (issue 11, item 6).

Each feature's backend now (and whether the operator pinned it), Redis availability and
the latency of its last PING, the recent switches with their reasons, rate-limit
decisions and the cache hit ratio. The page refreshes itself (a meta refresh: no script,
no external asset) and is served to the admin networks only
(``AUTHLY_ADMIN_ALLOWED_NETWORKS``), like the admin API; it shows nothing secret (the
Redis URL is masked).
"""

from __future__ import annotations

import ipaddress
import logging

from quart import Blueprint, Response

from authly import __version__
from authly.core import operator
from authly.errors import StoreError
from authly.web.context import client_ip, services
from authly.web.health import store_available
from authly.web.metrics import app_metrics
from authly.web.pages import error_page, page

log = logging.getLogger("authly.web")

bp = Blueprint("status", __name__)

REFRESH_SECONDS = 2


def _allowed() -> bool:
    try:
        ip = ipaddress.ip_address(client_ip())
    except ValueError:
        return False
    return any(ip in net for net in services().settings.admin_allowed_networks)


@bp.get("/status")
async def status() -> Response:
    if not _allowed():
        log.warning(
            "status page refused for %s (not in AUTHLY_ADMIN_ALLOWED_NETWORKS)", client_ip()
        )
        return await error_page(
            "The status page is not reachable from this address.", 403, title="Not allowed"
        )
    s = services()
    supervisor = s.supervisor
    try:
        pinned = await operator.read_pins(s.db)
    except StoreError:
        pinned = supervisor.pinned if supervisor else frozenset()
    metrics = app_metrics()
    hits = metrics.value("authly_redis_cache_hits_total")
    lookups = hits + metrics.value("authly_redis_cache_misses_total")
    latency = supervisor.last_ping_seconds if supervisor else None
    return await page(
        "status.html",
        refresh=REFRESH_SECONDS,
        issuer=s.settings.issuer,
        version=__version__,
        store_backend=s.db.backend,
        store_ok=await store_available(),
        redis_url=s.settings.redis.url.masked() if s.settings.redis.url else None,
        redis_up=supervisor.available if supervisor else False,
        latency_ms=None if latency is None else latency * 1000,
        last_error=supervisor.last_error.as_json()
        if supervisor and supervisor.last_error
        else None,
        features=[
            {
                "feature": slot.feature,
                "configured": s.settings.redis.uses_redis(slot.feature),
                "pinned": slot.feature in pinned,
                "backend": slot.backend_name,
            }
            for slot in s.slots()
        ],
        allowed=metrics.value("authly_rate_limit_decisions_total", result="allowed"),
        denied=metrics.value("authly_rate_limit_decisions_total", result="denied"),
        hits=hits,
        lookups=lookups,
        switches=[sw.as_json() for sw in reversed(supervisor.recent_switches)]
        if supervisor
        else [],
    )
