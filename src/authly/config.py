"""Settings: read once from AUTHLY_* environment variables, then passed down.

``Settings.from_env(environ)`` is the only place that reads the environment; every
error it raises is a ConfigError naming the variable, so start-up can stop with one
line. Nothing in Authly keeps a module-level Settings.

Each variable is declared once, in ``authly.settings_table.SETTINGS``: its name, the
field it fills here, its parser, default and description. The dataclass defaults below,
``from_env`` and ``effective`` (``authly check-config``) all come from that table; the
dataclasses only add the fields' types.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from authly.config_parse import Network, default_hash_concurrency
from authly.errors import ConfigError
from authly.redis.url import RedisUrl
from authly.settings_table import BY_FIELD, SETTINGS, static_defaults

__all__ = ["RedisSettings", "Settings", "default_hash_concurrency"]

_REDIS = "redis."
# Every field's default, from the table (a test checks that the fields and the table
# entries match one to one, and that exactly the secret ones are left out of repr).
_D = static_defaults()


@dataclass(frozen=True)
class RedisSettings:
    url: RedisUrl | None = _D["redis.url"]
    rate_limit: bool = _D["redis.rate_limit"]
    cache: bool = _D["redis.cache"]
    session: bool = _D["redis.session"]
    pool_size: int = _D["redis.pool_size"]
    connect_timeout: float = _D["redis.connect_timeout"]
    keepalive: bool = _D["redis.keepalive"]
    op_timeout_ms: int = _D["redis.op_timeout_ms"]
    health_interval_ms: int = _D["redis.health_interval_ms"]

    def uses_redis(self, feature: str) -> bool:
        """A feature uses Redis only when the URL is set AND its flag is true."""
        return self.url is not None and bool(getattr(self, feature))


@dataclass(frozen=True)
class Settings:
    host: str = _D["host"]
    port: int = _D["port"]
    issuer: str = _D["issuer"]
    database_url: str = _D["database_url"]
    database_pool_size: int = _D["database_pool_size"]
    admin_username: str = _D["admin_username"]
    admin_password: str | None = field(default=_D["admin_password"], repr=False)
    access_token_ttl: int = _D["access_token_ttl"]
    refresh_token_ttl: int = _D["refresh_token_ttl"]
    login_rate_limit: int = _D["login_rate_limit"]
    login_rate_window: int = _D["login_rate_window"]
    rate_limit_max_keys: int = _D["rate_limit_max_keys"]
    max_body_bytes: int = _D["max_body_bytes"]
    password_hash_time_cost: int = _D["password_hash_time_cost"]
    password_hash_memory_kib: int = _D["password_hash_memory_kib"]
    password_hash_concurrency: int = _D["password_hash_concurrency"]
    log_level: str = _D["log_level"]
    log_format: str = _D["log_format"]
    log_file: str | None = _D["log_file"]
    trusted_proxies: tuple[Network, ...] = _D["trusted_proxies"]
    admin_allowed_networks: tuple[Network, ...] = _D["admin_allowed_networks"]
    token_rate_limit: int = _D["token_rate_limit"]
    token_rate_window: int = _D["token_rate_window"]
    authorize_rate_limit: int = _D["authorize_rate_limit"]
    authorize_rate_window: int = _D["authorize_rate_window"]
    pending_requests_max: int = _D["pending_requests_max"]
    require_par: bool = _D["require_par"]
    dpop_nonce: bool = _D["dpop_nonce"]
    registration: str = _D["registration"]
    registration_rate_limit: int = _D["registration_rate_limit"]
    registration_rate_window: int = _D["registration_rate_window"]
    purge_interval: int = _D["purge_interval"]
    cache_ttl_jwks: int = _D["cache_ttl_jwks"]
    cache_ttl_metadata: int = _D["cache_ttl_metadata"]
    cache_ttl_discovery: int = _D["cache_ttl_discovery"]
    cache_ttl_profile: int = _D["cache_ttl_profile"]
    cache_ttl_revocation: int = _D["cache_ttl_revocation"]
    redis: RedisSettings = field(default_factory=RedisSettings)
    # False when AUTHLY_ISSUER was not set and ``issuer`` is this instance's own default:
    # the store's recorded issuer then wins (one issuer per deployment: lifecycle.py).
    # Derived from the environment (not a variable of its own), and not part of equality.
    issuer_configured: bool = field(default=True, compare=False, metadata={"derived": True})

    @property
    def sqlite_path(self) -> str:
        return self.database_url[len("sqlite:///") :]

    @classmethod
    def from_env(cls, environ: Mapping[str, str], **overrides: Any) -> Settings:
        """Build Settings from an environment mapping; keyword overrides (CLI flags,
        by field name) win when they are not None.

        Raises:
            ConfigError: naming the first variable whose value is bad.
        """
        unknown = set(overrides) - set(BY_FIELD)
        if unknown:
            raise TypeError(f"unknown settings: {', '.join(sorted(unknown))}")
        values: dict[str, Any] = {}
        for setting in SETTINGS:
            override = overrides.get(setting.field)
            raw = environ.get(setting.name)
            if override is not None:
                values[setting.field] = override
            elif raw is None or raw.strip() == "":
                values[setting.field] = setting.default_value(values)
            else:
                try:
                    values[setting.field] = setting.parse(raw)
                except ValueError as exc:
                    raise ConfigError(setting.name, str(exc)) from None
        redis = {k[len(_REDIS) :]: v for k, v in values.items() if k.startswith(_REDIS)}
        top = {k: v for k, v in values.items() if not k.startswith(_REDIS)}
        configured = overrides.get("issuer") is not None or bool(
            environ.get("AUTHLY_ISSUER", "").strip()
        )
        return cls(**top, redis=RedisSettings(**redis), issuer_configured=configured)

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)

    def value(self, path: str) -> Any:
        """The value of a table field (``port``, ``redis.pool_size``)."""
        if path.startswith(_REDIS):
            return getattr(self.redis, path[len(_REDIS) :])
        return getattr(self, path)

    def effective(self) -> dict[str, str]:
        """Every setting as printable text, secrets masked (``authly check-config``)."""
        return {s.name: s.show(self.value(s.field)) for s in SETTINGS}
