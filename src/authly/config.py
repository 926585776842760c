"""Settings: read once from AUTHLY_* environment variables, then passed down.

``Settings.from_env(environ)`` is the only place that reads the environment; every
error it raises is a ConfigError naming the variable, so start-up can stop with one
line. Nothing in Authly keeps a module-level Settings.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import urlsplit

from authly.errors import ConfigError
from authly.redis.url import RedisUrl, RedisUrlError, parse_redis_url

T = TypeVar("T")

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}
_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


def _parse_bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ValueError("must be one of true/false/1/0/yes/no")


def _int_parser(lo: int, hi: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text.strip())
        except ValueError:
            raise ValueError(f"must be a whole number, got {text!r}") from None
        if not lo <= value <= hi:
            raise ValueError(f"must be between {lo} and {hi}, got {value}")
        return value

    return parse


def _parse_issuer(text: str) -> str:
    parts = urlsplit(text.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http:// or https:// URL with a host")
    if parts.query or parts.fragment:
        raise ValueError("must not have a query or fragment (RFC 8414 §2)")
    return text.strip().rstrip("/")


def _parse_database_url(text: str) -> str:
    text = text.strip()
    if text.startswith(("postgresql://", "postgres://")):
        raise ValueError("PostgreSQL is not supported yet; use sqlite:///path/to/file.db")
    if not text.startswith("sqlite:///") or len(text) <= len("sqlite:///"):
        raise ValueError("must look like sqlite:///relative/path.db or sqlite:////abs/path.db")
    return text


def _parse_redis_url(text: str) -> RedisUrl:
    try:
        url = parse_redis_url(text)
    except RedisUrlError as exc:
        raise ValueError(str(exc)) from None
    if url.is_cluster:
        raise ValueError(
            f"Redis Cluster ({url.masked()}) is not supported yet; give one node's URL"
        )
    return url


def _parse_log_level(text: str) -> str:
    level = text.strip().upper()
    if level not in _LOG_LEVELS:
        raise ValueError(f"must be one of {', '.join(_LOG_LEVELS)}")
    return level


def _parse_networks(text: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    try:
        parts = (p.strip() for p in text.split(","))
        return tuple(ipaddress.ip_network(p, strict=False) for p in parts if p)
    except ValueError as exc:
        raise ValueError(str(exc)) from None


@dataclass(frozen=True)
class RedisSettings:
    url: RedisUrl | None = None
    rate_limit: bool = False
    cache: bool = False
    session: bool = False
    pool_size: int = 10
    connect_timeout: float = 5.0
    keepalive: bool = True
    op_timeout_ms: int = 250
    health_interval_ms: int = 500

    def uses_redis(self, feature: str) -> bool:
        """A feature uses Redis only when the URL is set AND its flag is true."""
        return self.url is not None and bool(getattr(self, feature))


@dataclass(frozen=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 8000
    issuer: str = "http://127.0.0.1:8000"
    database_url: str = "sqlite:///./data/authly.db"
    admin_username: str = "admin"
    admin_password: str | None = field(default=None, repr=False)
    access_token_ttl: int = 900
    refresh_token_ttl: int = 30 * 24 * 3600
    login_rate_limit: int = 5
    login_rate_window: int = 60
    rate_limit_max_keys: int = 100_000
    max_body_bytes: int = 64 * 1024
    password_hash_time_cost: int = 2
    password_hash_memory_kib: int = 19_456
    password_hash_concurrency: int = field(default_factory=lambda: default_hash_concurrency())
    log_level: str = "INFO"
    trusted_proxies: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()
    admin_allowed_networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = (
        ipaddress.ip_network("127.0.0.0/8"),
        ipaddress.ip_network("::1/128"),
    )
    token_rate_limit: int = 1200
    token_rate_window: int = 60
    authorize_rate_limit: int = 300
    authorize_rate_window: int = 60
    pending_requests_max: int = 50_000
    purge_interval: int = 300
    redis: RedisSettings = field(default_factory=RedisSettings)

    @property
    def sqlite_path(self) -> str:
        return self.database_url[len("sqlite:///") :]

    @classmethod
    def from_env(cls, environ: Mapping[str, str], **overrides: Any) -> Settings:
        """Build Settings from an environment mapping; keyword overrides win (CLI flags).

        Raises:
            ConfigError: naming the first variable whose value is bad.
        """
        env = _Reader(environ)
        host = overrides.get("host")
        if host is None:
            host = env.get("AUTHLY_HOST", str.strip, "127.0.0.1")
        port = overrides.get("port")
        if port is None:
            port = env.get("AUTHLY_PORT", _int_parser(0, 65535), 8000)
        redis = RedisSettings(
            url=env.get("AUTHLY_REDIS_URL", _parse_redis_url, None),
            rate_limit=env.get("AUTHLY_REDIS_RATE_LIMIT", _parse_bool, False),
            cache=env.get("AUTHLY_REDIS_CACHE", _parse_bool, False),
            session=env.get("AUTHLY_REDIS_SESSION", _parse_bool, False),
            pool_size=env.get("AUTHLY_REDIS_POOL_SIZE", _int_parser(1, 1000), 10),
            connect_timeout=env.get("AUTHLY_REDIS_TIMEOUT", _int_parser(1, 300), 5),
            keepalive=env.get("AUTHLY_REDIS_KEEPALIVE", _parse_bool, True),
            op_timeout_ms=env.get("AUTHLY_REDIS_OP_TIMEOUT_MS", _int_parser(10, 60_000), 250),
            health_interval_ms=env.get(
                "AUTHLY_REDIS_HEALTH_INTERVAL_MS", _int_parser(50, 600_000), 500
            ),
        )
        admin_password = environ.get("AUTHLY_ADMIN_PASSWORD") or None
        if admin_password is not None and len(admin_password) < 8:
            raise ConfigError("AUTHLY_ADMIN_PASSWORD", "must be at least 8 characters")
        settings = cls(
            host=host,
            port=port,
            issuer=env.get("AUTHLY_ISSUER", _parse_issuer, f"http://{_url_host(host)}:{port}"),
            database_url=env.get(
                "AUTHLY_DATABASE_URL", _parse_database_url, "sqlite:///./data/authly.db"
            ),
            admin_username=env.get("AUTHLY_ADMIN_USERNAME", _parse_username, "admin"),
            admin_password=admin_password,
            access_token_ttl=env.get("AUTHLY_ACCESS_TOKEN_TTL", _int_parser(30, 86_400), 900),
            refresh_token_ttl=env.get(
                "AUTHLY_REFRESH_TOKEN_TTL", _int_parser(60, 365 * 86_400), 30 * 86_400
            ),
            login_rate_limit=env.get("AUTHLY_LOGIN_RATE_LIMIT", _int_parser(1, 1_000_000), 5),
            login_rate_window=env.get("AUTHLY_LOGIN_RATE_WINDOW", _int_parser(1, 86_400), 60),
            rate_limit_max_keys=env.get(
                "AUTHLY_RATE_LIMIT_MAX_KEYS", _int_parser(100, 10_000_000), 100_000
            ),
            max_body_bytes=env.get("AUTHLY_MAX_BODY_BYTES", _int_parser(1024, 16 << 20), 65_536),
            password_hash_time_cost=env.get(
                "AUTHLY_PASSWORD_HASH_TIME_COST", _int_parser(1, 20), 2
            ),
            password_hash_memory_kib=env.get(
                "AUTHLY_PASSWORD_HASH_MEMORY_KIB", _int_parser(8, 4 << 20), 19_456
            ),
            password_hash_concurrency=env.get(
                "AUTHLY_PASSWORD_HASH_CONCURRENCY", _int_parser(1, 64), default_hash_concurrency()
            ),
            log_level=env.get("AUTHLY_LOG_LEVEL", _parse_log_level, "INFO"),
            trusted_proxies=env.get("AUTHLY_TRUSTED_PROXIES", _parse_networks, ()),
            admin_allowed_networks=env.get(
                "AUTHLY_ADMIN_ALLOWED_NETWORKS", _parse_networks, cls.admin_allowed_networks
            ),
            token_rate_limit=env.get("AUTHLY_TOKEN_RATE_LIMIT", _int_parser(1, 10_000_000), 1200),
            token_rate_window=env.get("AUTHLY_TOKEN_RATE_WINDOW", _int_parser(1, 86_400), 60),
            authorize_rate_limit=env.get(
                "AUTHLY_AUTHORIZE_RATE_LIMIT", _int_parser(1, 10_000_000), 300
            ),
            authorize_rate_window=env.get(
                "AUTHLY_AUTHORIZE_RATE_WINDOW", _int_parser(1, 86_400), 60
            ),
            pending_requests_max=env.get(
                "AUTHLY_PENDING_REQUESTS_MAX", _int_parser(10, 10_000_000), 50_000
            ),
            purge_interval=env.get("AUTHLY_PURGE_INTERVAL", _int_parser(0, 7 * 86_400), 300),
            redis=redis,
        )
        return settings

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)

    def effective(self) -> dict[str, str]:
        """Every setting as printable text, secrets masked (``authly check-config``)."""
        r = self.redis
        return {
            "AUTHLY_HOST": self.host,
            "AUTHLY_PORT": str(self.port),
            "AUTHLY_ISSUER": self.issuer,
            "AUTHLY_DATABASE_URL": self.database_url,
            "AUTHLY_ADMIN_USERNAME": self.admin_username,
            "AUTHLY_ADMIN_PASSWORD": "***" if self.admin_password else "(unset)",
            "AUTHLY_ACCESS_TOKEN_TTL": str(self.access_token_ttl),
            "AUTHLY_REFRESH_TOKEN_TTL": str(self.refresh_token_ttl),
            "AUTHLY_LOGIN_RATE_LIMIT": str(self.login_rate_limit),
            "AUTHLY_LOGIN_RATE_WINDOW": str(self.login_rate_window),
            "AUTHLY_RATE_LIMIT_MAX_KEYS": str(self.rate_limit_max_keys),
            "AUTHLY_MAX_BODY_BYTES": str(self.max_body_bytes),
            "AUTHLY_PASSWORD_HASH_TIME_COST": str(self.password_hash_time_cost),
            "AUTHLY_PASSWORD_HASH_MEMORY_KIB": str(self.password_hash_memory_kib),
            "AUTHLY_PASSWORD_HASH_CONCURRENCY": str(self.password_hash_concurrency),
            "AUTHLY_LOG_LEVEL": self.log_level,
            "AUTHLY_TRUSTED_PROXIES": ",".join(str(n) for n in self.trusted_proxies),
            "AUTHLY_ADMIN_ALLOWED_NETWORKS": ",".join(str(n) for n in self.admin_allowed_networks),
            "AUTHLY_TOKEN_RATE_LIMIT": str(self.token_rate_limit),
            "AUTHLY_TOKEN_RATE_WINDOW": str(self.token_rate_window),
            "AUTHLY_AUTHORIZE_RATE_LIMIT": str(self.authorize_rate_limit),
            "AUTHLY_AUTHORIZE_RATE_WINDOW": str(self.authorize_rate_window),
            "AUTHLY_PENDING_REQUESTS_MAX": str(self.pending_requests_max),
            "AUTHLY_PURGE_INTERVAL": str(self.purge_interval),
            "AUTHLY_REDIS_URL": r.url.masked() if r.url else "(unset)",
            "AUTHLY_REDIS_RATE_LIMIT": str(r.rate_limit).lower(),
            "AUTHLY_REDIS_CACHE": str(r.cache).lower(),
            "AUTHLY_REDIS_SESSION": str(r.session).lower(),
            "AUTHLY_REDIS_POOL_SIZE": str(r.pool_size),
            "AUTHLY_REDIS_TIMEOUT": str(int(r.connect_timeout)),
            "AUTHLY_REDIS_KEEPALIVE": str(r.keepalive).lower(),
            "AUTHLY_REDIS_OP_TIMEOUT_MS": str(r.op_timeout_ms),
            "AUTHLY_REDIS_HEALTH_INTERVAL_MS": str(r.health_interval_ms),
        }


def default_hash_concurrency() -> int:
    """One core fewer than the machine has (at least one): argon2id competes with the
    event loop for CPU, so leaving a core free keeps other requests' latency flat."""
    return max(1, (os.cpu_count() or 2) - 1)


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _parse_username(text: str) -> str:
    text = text.strip()
    if not 1 <= len(text) <= 64:
        raise ValueError("must be 1 to 64 characters")
    return text


class _Reader:
    """Reads one variable at a time and turns parse errors into ConfigError."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self._environ = environ

    def get(self, name: str, parse: Callable[[str], T], default: T) -> T:
        raw = self._environ.get(name)
        if raw is None or raw.strip() == "":
            return default
        try:
            return parse(raw)
        except ValueError as exc:
            raise ConfigError(name, str(exc)) from None
