"""Before and after serving: open the store, build the services, stop them.

The store's worker runs in ``app.nursery`` (quart-trio sets it before startup hooks),
and is stopped explicitly in ``after_serving`` so shutdown never waits on the nursery's
background-task deadline.
"""

from __future__ import annotations

import logging
import time

from quart_trio import QuartTrio

from authly.backends.memory import MemoryCache, MemoryRateLimiter, MemorySessionStore
from authly.backends.slot import CacheSlot, RateLimiterSlot, SessionSlot
from authly.config import Settings
from authly.metrics import FEATURES, Metrics
from authly.redis.actor import RedisActor, redis_dependency_available
from authly.services import EXTENSION_KEY, Services
from authly.store import keys as key_repo
from authly.store import users as user_repo
from authly.store.db import Database, open_database
from authly.tokens.access import AccessTokens
from authly.tokens.keys import SigningKeys, generate_rsa_key
from authly.tokens.service import TokenService
from authly.users.login import LoginService
from authly.users.passwords import PasswordHasher

log = logging.getLogger("authly")


def make_hasher(settings: Settings) -> PasswordHasher:
    return PasswordHasher(
        time_cost=settings.password_hash_time_cost,
        memory_kib=settings.password_hash_memory_kib,
        concurrency=settings.password_hash_concurrency,
    )


async def bootstrap_admin(db: Database, hasher: PasswordHasher, settings: Settings) -> None:
    """Create the first admin from AUTHLY_ADMIN_* when the store has no user at all."""
    if settings.admin_password is None:
        if await db.run(user_repo.count) == 0:
            log.warning(
                "no users exist: set AUTHLY_ADMIN_PASSWORD or run "
                "'authly admin user create --username NAME --password-stdin'"
            )
        return
    if await db.run(user_repo.count) > 0:
        return
    password_hash = await hasher.hash(settings.admin_password)
    created = await db.run(
        user_repo.create_if_none, settings.admin_username, password_hash, time.time()
    )
    if created is not None:
        log.info("bootstrap admin user %r created", created.username)


async def build_services(app: QuartTrio, settings: Settings, metrics: Metrics) -> Services:
    db = await open_database(app.nursery, settings.sqlite_path)
    rows = await db.run(key_repo.ensure_one, generate_rsa_key, time.time())
    keys = SigningKeys(rows)
    hasher = make_hasher(settings)
    await bootstrap_admin(db, hasher, settings)
    rate_limit = RateLimiterSlot(
        MemoryRateLimiter(max_keys=settings.rate_limit_max_keys),
        on_decision=metrics.count_decision,
    )
    cache = CacheSlot(MemoryCache(), on_lookup=metrics.count_lookup)
    sessions = SessionSlot(MemorySessionStore())
    for feature in FEATURES:
        metrics.set_backend(feature, "memory")
    metrics.redis_up.set(0)
    access = AccessTokens(
        keys, issuer=settings.issuer, audience=settings.issuer, ttl=settings.access_token_ttl
    )
    services = Services(
        settings=settings,
        metrics=metrics,
        db=db,
        keys=keys,
        hasher=hasher,
        rate_limit=rate_limit,
        cache=cache,
        sessions=sessions,
        login=LoginService(
            db,
            hasher,
            rate_limit,
            max_failures=settings.login_rate_limit,
            window_seconds=settings.login_rate_window,
        ),
        tokens=TokenService(db, access, refresh_ttl=settings.refresh_token_ttl),
    )
    await start_redis(app, services)
    return services


async def start_redis(app: QuartTrio, services: Services) -> None:
    """Start the client actor and the supervisor when any feature is set to use Redis.

    The supervisor reports ready only after its first probe, so by the time the app
    serves, each feature is on the backend it should be on.
    """
    redis = services.settings.redis
    if redis.url is None:
        return
    enabled = [f for f in FEATURES if redis.uses_redis(f)]
    if not enabled:
        log.info("AUTHLY_REDIS_URL is set but no Redis feature flag is on; using memory backends")
        return
    if not redis_dependency_available():
        log.warning("Redis dependency not available")
        log.warning("Redis connection failed, falling back to memory")
        log.warning("using memory backends")
        services.redis_error = "Redis dependency not available (pip install 'authly[redis]')"
        return
    from authly.supervisor import Supervisor

    metrics = services.metrics
    supervisor: Supervisor | None = None

    def on_failure(error: BaseException) -> None:
        if supervisor is not None:
            supervisor.report_failure(error)

    actor = RedisActor(
        redis.url,
        pool_size=redis.pool_size,
        connect_timeout=redis.connect_timeout,
        keepalive=redis.keepalive,
        op_timeout=redis.op_timeout_ms / 1000,
        on_failure=on_failure,
        on_command=lambda op: metrics.redis_operations.labels(op).inc(),
    )
    log.info("connecting to Redis at %s", redis.url.masked())
    services.owned_scopes.append(await app.nursery.start(actor.run))
    supervisor = Supervisor(
        redis,
        actor,
        rate_limit=services.rate_limit,
        cache=services.cache,
        sessions=services.sessions,
        metrics=metrics,
    )
    services.supervisor = supervisor
    services.owned_scopes.append(await app.nursery.start(supervisor.run))


def install(app: QuartTrio, settings: Settings, metrics: Metrics) -> None:
    @app.before_serving
    async def _start() -> None:
        services = await build_services(app, settings, metrics)
        app.extensions[EXTENSION_KEY] = services
        log.info(
            "Authly serving as %s (store %s, backends: memory)",
            settings.issuer,
            settings.database_url,
        )

    @app.after_serving
    async def _stop() -> None:
        services: Services | None = app.extensions.pop(EXTENSION_KEY, None)
        if services is not None:
            for scope in reversed(services.owned_scopes):
                scope.cancel()
            services.db.close()
