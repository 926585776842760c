"""Before and after serving: open the store, build the services, stop them.

The store's worker runs in ``app.nursery`` (quart-trio sets it before startup hooks),
and is stopped explicitly in ``after_serving`` so shutdown never waits on the nursery's
background-task deadline.
"""

from __future__ import annotations

import functools
import logging
import time

from quart_trio import QuartTrio

from authly.config import Settings
from authly.core import operator
from authly.core.backend_factory import serve_app_backends, stop_serving_app_backends
from authly.core.heartbeat import StoreHeartbeat
from authly.core.logs import reopen_on_sighup
from authly.core.redis_runtime import make_slots, start_redis
from authly.housekeeping import Housekeeper
from authly.metrics import Metrics
from authly.oauth.assertions import ClientAssertions
from authly.oauth.authorization import AuthorizationCodes
from authly.oauth.client_auth import ClientAuthenticator
from authly.oauth.consent import Consents
from authly.oauth.jwks_fetch import RemoteJwks
from authly.oauth.metadata import MetadataDocument
from authly.oauth.pending import PendingRequests
from authly.oauth.registry import Registry
from authly.oidc.backchannel import BackchannelSender, LogoutNotifier
from authly.oidc.id_tokens import IdTokens
from authly.oidc.logout import Logouts
from authly.services import EXTENSION_KEY, STOPPING_KEY, Services
from authly.store import deployment as deployment_repo
from authly.store import users as user_repo
from authly.store.db import Database, open_database
from authly.tokens.access import AccessTokens
from authly.tokens.jwks import JwksDocument
from authly.tokens.keys import REFRESH_INTERVAL, SigningKeys, retention_for
from authly.tokens.revocation import RevocationList
from authly.tokens.service import TokenService
from authly.users.accounts import Accounts
from authly.users.admin_auth import AdminAuth
from authly.users.browser_sessions import BrowserSessions
from authly.users.login import LoginService
from authly.users.passwords import PasswordHasher
from authly.users.profiles import UserProfiles

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
                "'authly admin user create --admin --username NAME --password-stdin'"
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


async def deployment_issuer(db: Database, settings: Settings) -> Settings:
    """One issuer per deployment: without AUTHLY_ISSUER, the first instance on a store
    records its issuer there and every later instance uses it (tokens from one instance
    are then accepted by the others). A configured AUTHLY_ISSUER always wins."""
    if settings.issuer_configured:
        return settings
    recorded = await db.run(
        deployment_repo.claim, deployment_repo.ISSUER, settings.issuer, time.time()
    )
    if recorded == settings.issuer:
        log.info(
            "AUTHLY_ISSUER is unset: recorded this instance's issuer %s in the store for"
            " every instance sharing it; set AUTHLY_ISSUER to the public URL",
            recorded,
        )
        return settings
    log.warning(
        "AUTHLY_ISSUER is unset: using the issuer recorded in the store by the first"
        " instance, %s (not this instance's own %s); set AUTHLY_ISSUER to the public URL",
        recorded,
        settings.issuer,
    )
    return settings.replace(issuer=recorded)


async def build_services(app: QuartTrio, settings: Settings, metrics: Metrics) -> Services:
    db = await open_database(
        app.nursery, settings.database_url, pool_size=settings.database_pool_size
    )
    settings = await deployment_issuer(db, settings)
    metrics.watch_store(db)
    # Retired keys stay published while anything they signed can live: access tokens
    # and ID tokens (both AUTHLY_ACCESS_TOKEN_TTL) — tokens/keys.py.
    keys = await SigningKeys.open(db, retention=retention_for(settings.access_token_ttl))
    hasher = make_hasher(settings)
    await bootstrap_admin(db, hasher, settings)
    rate_limit, cache, sessions = make_slots(settings, metrics, db)
    access = AccessTokens(
        keys, issuer=settings.issuer, audience=settings.issuer, ttl=settings.access_token_ttl
    )
    profiles = UserProfiles(db, cache, ttl=settings.cache_ttl_profile)
    login = LoginService(
        db,
        hasher,
        rate_limit,
        profiles,
        max_failures=settings.login_rate_limit,
        window_seconds=settings.login_rate_window,
    )
    revocations = RevocationList(db, cache, negative_ttl=settings.cache_ttl_revocation)
    tokens = TokenService(db, access, sessions, revocations, refresh_ttl=settings.refresh_token_ttl)
    metadata = MetadataDocument(
        settings.issuer,
        db,
        cache,
        ttl=settings.cache_ttl_metadata,
        openid_ttl=settings.cache_ttl_discovery,
        require_par=settings.require_par,
        registration=settings.registration != "closed",
    )
    id_tokens = IdTokens(keys, issuer=settings.issuer, ttl=settings.access_token_ttl)
    backchannel = BackchannelSender(id_tokens, on_result=metrics.count_backchannel_logout)
    # Every way a user's sessions end tells their back-channel clients (RP-initiated
    # logout through Logouts; the rest through Accounts, which cannot import oidc).
    notifier = LogoutNotifier(db, backchannel)
    browser_sessions = BrowserSessions(sessions, db)
    services = Services(
        settings=settings,
        metrics=metrics,
        db=db,
        keys=keys,
        hasher=hasher,
        rate_limit=rate_limit,
        cache=cache,
        sessions=sessions,
        login=login,
        tokens=tokens,
        pending=PendingRequests(sessions, max_entries=settings.pending_requests_max),
        consents=Consents(db, AuthorizationCodes(db), settings.issuer),
        browser_sessions=browser_sessions,
        admin_auth=AdminAuth(db, sessions, tokens, login),
        registry=Registry(db, metadata),
        metadata=metadata,
        profiles=profiles,
        jwks=JwksDocument(keys, cache, ttl=settings.cache_ttl_jwks),
        accounts=Accounts(
            db, hasher, profiles, tokens, login, on_sessions_ended=notifier.sessions_ended
        ),
        id_tokens=id_tokens,
        backchannel=backchannel,
        logouts=Logouts(db, id_tokens, browser_sessions, tokens, sessions, notifier),
        # Client assertions (RFC 7523): jtis and fetched jwks_uri documents in the cache.
        client_auth=ClientAuthenticator(
            db, ClientAssertions(cache, RemoteJwks(cache), issuer=settings.issuer)
        ),
    )
    services.owned_scopes.append(await app.nursery.start(keys.run_refresh, REFRESH_INTERVAL))
    services.owned_scopes.append(await app.nursery.start(backchannel.run))
    if settings.purge_interval > 0:
        services.housekeeper = Housekeeper(
            db, interval=settings.purge_interval, on_purged=metrics.count_purged
        )
        services.owned_scopes.append(await app.nursery.start(services.housekeeper.run))
    if settings.log_file is not None:  # logrotate: move the file, then SIGHUP (core/logs.py)
        services.owned_scopes.append(await app.nursery.start(reopen_on_sighup))
    if not settings.redis.uses_redis("rate_limit"):
        # Memory limits divide their budget by the instances alive on the store.
        heartbeat = StoreHeartbeat(db, rate_limit, on_count=metrics.rate_limit_instances.set)
        services.owned_scopes.append(await app.nursery.start(heartbeat.run))
    runtime = await start_redis(
        app.nursery,
        settings.redis,
        metrics,
        rate_limit,
        cache,
        sessions,
        read_pins=functools.partial(operator.read_pins, db),
    )
    serve_app_backends(rate_limit, cache, sessions, runtime)
    services.supervisor = runtime.supervisor
    services.redis_error = runtime.error
    services.owned_scopes.extend(runtime.scopes)
    return services


def install(app: QuartTrio, settings: Settings, metrics: Metrics) -> None:
    @app.before_serving
    async def _start() -> None:
        services = await build_services(app, settings, metrics)
        app.extensions[EXTENSION_KEY] = services
        log.info(
            "Authly serving as %s (store %s; backends: %s)",
            services.settings.issuer,
            services.db.masked_url(),
            ", ".join(f"{slot.feature}={slot.backend_name}" for slot in services.slots()),
        )

    @app.after_serving
    async def _stop() -> None:
        app.extensions[STOPPING_KEY] = True  # /health/ready says "stopping"
        services: Services | None = app.extensions.pop(EXTENSION_KEY, None)
        if services is not None:
            stop_serving_app_backends()
            for scope in reversed(services.owned_scopes):
                scope.cancel()
            services.db.close()
