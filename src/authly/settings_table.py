"""Every AUTHLY_* setting, declared once.

``SETTINGS`` is the one table: for each variable, the Settings field it fills, the
parser that reads it (``authly.config_parse``), its default written as it
would be in the environment, and a one-line description. ``authly.config`` builds the
dataclass defaults, ``Settings.from_env`` and ``Settings.effective`` (``authly
check-config``) from it; ``configs/authly.example.env`` is rendered from it
(``python -m authly.settings_table > configs/authly.example.env``), and a test checks
that README's and docs/redis.md's tables name exactly these variables with these
defaults.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from authly.config_parse import (
    Setting,
    default_hash_concurrency,
    int_parser,
    parse_bool,
    parse_database_url,
    parse_host,
    parse_issuer,
    parse_log_file,
    parse_log_format,
    parse_log_level,
    parse_networks,
    parse_password,
    parse_redis_url_setting,
    parse_registration_mode,
    parse_username,
    url_host,
)


def _default_issuer(values: Mapping[str, Any]) -> str:
    return f"http://{url_host(values['host'])}:{values['port']}"


def _hash_concurrency(values: Mapping[str, Any]) -> int:
    return default_hash_concurrency()


# --- the table ----------------------------------------------------------------------------------


_SECONDS = int_parser(1, 86_400)
_CACHE_TTL = int_parser(1, 86_400)
_COUNT = int_parser(1, 10_000_000)

SETTINGS: tuple[Setting, ...] = (
    Setting("AUTHLY_HOST", "host", parse_host, "127.0.0.1", "Address to bind (flag --host wins)."),
    Setting(
        "AUTHLY_PORT", "port", int_parser(0, 65535), "8000", "Port to bind (flag --port wins)."
    ),
    Setting(
        "AUTHLY_ISSUER",
        "issuer",
        parse_issuer,
        None,
        "Public URL of this server; the `iss` and `aud` of every token. Set it in production.",
        compute=_default_issuer,
        default_doc="http://<host>:<port>",
        example="https://auth.example.com",
    ),
    Setting(
        "AUTHLY_DATABASE_URL",
        "database_url",
        parse_database_url,
        "sqlite:///./data/authly.db",
        "SQLite file (sqlite:////abs/path.db for an absolute path) or"
        " postgresql://user:pass@host:port/db (also postgres://, ?sslmode=... passed through).",
    ),
    Setting(
        "AUTHLY_DATABASE_POOL_SIZE",
        "database_pool_size",
        int_parser(1, 1000),
        "10",
        "PostgreSQL: connections in the pool (and worker threads that use them).",
    ),
    Setting(
        "AUTHLY_ADMIN_USERNAME",
        "admin_username",
        parse_username,
        "admin",
        "First admin, created on start-up when the store has no user.",
    ),
    Setting(
        "AUTHLY_ADMIN_PASSWORD",
        "admin_password",
        parse_password,
        None,
        "Its password (at least 8 characters); no admin is created while unset.",
        secret=True,
    ),
    Setting(
        "AUTHLY_ACCESS_TOKEN_TTL",
        "access_token_ttl",
        int_parser(30, 86_400),
        "900",
        "Access token lifetime, seconds.",
    ),
    Setting(
        "AUTHLY_REFRESH_TOKEN_TTL",
        "refresh_token_ttl",
        int_parser(60, 365 * 86_400),
        "2592000",
        "Refresh token lifetime from its last rotation, seconds.",
    ),
    Setting(
        "AUTHLY_LOGIN_RATE_LIMIT",
        "login_rate_limit",
        int_parser(1, 1_000_000),
        "5",
        "Failed logins allowed per window, per username and per client IP.",
    ),
    Setting(
        "AUTHLY_LOGIN_RATE_WINDOW", "login_rate_window", _SECONDS, "60", "That window, seconds."
    ),
    Setting(
        "AUTHLY_RATE_LIMIT_MAX_KEYS",
        "rate_limit_max_keys",
        int_parser(100, 10_000_000),
        "100000",
        "Windows the in-memory limiter keeps at most (new keys get 429 while all are live).",
    ),
    Setting(
        "AUTHLY_MAX_BODY_BYTES",
        "max_body_bytes",
        int_parser(1024, 16 << 20),
        "65536",
        "Largest request body, bytes.",
    ),
    Setting(
        "AUTHLY_PASSWORD_HASH_TIME_COST",
        "password_hash_time_cost",
        int_parser(1, 20),
        "2",
        "argon2id iterations.",
    ),
    Setting(
        "AUTHLY_PASSWORD_HASH_MEMORY_KIB",
        "password_hash_memory_kib",
        int_parser(8, 4 << 20),
        "19456",
        "argon2id memory, KiB.",
    ),
    Setting(
        "AUTHLY_PASSWORD_HASH_CONCURRENCY",
        "password_hash_concurrency",
        int_parser(1, 64),
        None,
        "Password hashes computed at once; default: the number of cores minus one.",
        compute=_hash_concurrency,
        default_doc="cores - 1 (at least 1)",
        example="1",
    ),
    Setting(
        "AUTHLY_LOG_LEVEL",
        "log_level",
        parse_log_level,
        "INFO",
        "DEBUG, INFO, WARNING or ERROR.",
    ),
    Setting(
        "AUTHLY_LOG_FORMAT",
        "log_format",
        parse_log_format,
        "text",
        "text (one line per record) or json (one JSON object per line: time, level,"
        " logger, message, exception).",
    ),
    Setting(
        "AUTHLY_LOG_FILE",
        "log_file",
        parse_log_file,
        None,
        "Append logs to this file instead of stderr; reopened on SIGHUP (logrotate).",
        example="/var/log/authly.log",
    ),
    Setting(
        "AUTHLY_TRUSTED_PROXIES",
        "trusted_proxies",
        parse_networks,
        "",
        "Comma-separated networks whose X-Forwarded-For is believed.",
    ),
    Setting(
        "AUTHLY_ADMIN_ALLOWED_NETWORKS",
        "admin_allowed_networks",
        parse_networks,
        "127.0.0.0/8,::1/128",
        "Comma-separated networks the admin API (/api/v1/admin) answers.",
    ),
    Setting(
        "AUTHLY_TOKEN_RATE_LIMIT",
        "token_rate_limit",
        _COUNT,
        "1200",
        "Token, revocation and introspection requests per window, per client and per IP.",
    ),
    Setting(
        "AUTHLY_TOKEN_RATE_WINDOW", "token_rate_window", _SECONDS, "60", "That window, seconds."
    ),
    Setting(
        "AUTHLY_AUTHORIZE_RATE_LIMIT",
        "authorize_rate_limit",
        _COUNT,
        "300",
        "Authorization requests per window, per IP, from browsers without a login session.",
    ),
    Setting(
        "AUTHLY_AUTHORIZE_RATE_WINDOW",
        "authorize_rate_window",
        _SECONDS,
        "60",
        "That window, seconds.",
    ),
    Setting(
        "AUTHLY_PENDING_REQUESTS_MAX",
        "pending_requests_max",
        int_parser(10, 10_000_000),
        "50000",
        "Pending authorization requests kept at most (the oldest are evicted first).",
    ),
    Setting(
        "AUTHLY_REQUIRE_PAR",
        "require_par",
        parse_bool,
        "false",
        "Every client must push its authorization requests first (RFC 9126).",
    ),
    Setting(
        "AUTHLY_DPOP_NONCE",
        "dpop_nonce",
        parse_bool,
        "false",
        "DPoP proofs (RFC 9449) must carry a nonce the server issued (DPoP-Nonce header).",
    ),
    Setting(
        "AUTHLY_REGISTRATION",
        "registration",
        parse_registration_mode,
        "closed",
        "Dynamic client registration (RFC 7591): closed (off), token (with an initial"
        " access token from an operator) or open (anyone).",
    ),
    Setting(
        "AUTHLY_REGISTRATION_RATE_LIMIT",
        "registration_rate_limit",
        _COUNT,
        "10",
        "Dynamic client registration requests per window, per client IP.",
    ),
    Setting(
        "AUTHLY_REGISTRATION_RATE_WINDOW",
        "registration_rate_window",
        _SECONDS,
        "3600",
        "That window, seconds.",
    ),
    Setting(
        "AUTHLY_PURGE_INTERVAL",
        "purge_interval",
        int_parser(0, 7 * 86_400),
        "300",
        "Seconds between purges of expired codes, token families, revocations (0: never).",
    ),
    Setting(
        "AUTHLY_CACHE_TTL_JWKS",
        "cache_ttl_jwks",
        _CACHE_TTL,
        "300",
        "Seconds the JWK Set is cached (less when a retired key's publication ends"
        " sooner); also its Cache-Control max-age.",
    ),
    Setting(
        "AUTHLY_CACHE_TTL_METADATA",
        "cache_ttl_metadata",
        _CACHE_TTL,
        "300",
        "Seconds the RFC 8414 server metadata is cached; also its Cache-Control max-age.",
    ),
    Setting(
        "AUTHLY_CACHE_TTL_DISCOVERY",
        "cache_ttl_discovery",
        _CACHE_TTL,
        "300",
        "Seconds the OpenID discovery document is cached; also its Cache-Control max-age.",
    ),
    Setting(
        "AUTHLY_CACHE_TTL_PROFILE",
        "cache_ttl_profile",
        _CACHE_TTL,
        "60",
        "Seconds a user profile is cached (a change reaches other instances' memory"
        " caches within this).",
    ),
    Setting(
        "AUTHLY_CACHE_TTL_REVOCATION",
        "cache_ttl_revocation",
        int_parser(1, 3600),
        "30",
        "Seconds a 'not revoked' answer is cached (a revocation reaches other"
        " instances' memory caches within this).",
    ),
    Setting(
        "AUTHLY_REDIS_URL",
        "redis.url",
        parse_redis_url_setting,
        None,
        "Redis (optional); a feature uses it only when this is set and its flag is true.",
        example="redis://:password@127.0.0.1:6379/0",
    ),
    Setting(
        "AUTHLY_REDIS_RATE_LIMIT", "redis.rate_limit", parse_bool, "false", "Rate limits on Redis."
    ),
    Setting("AUTHLY_REDIS_CACHE", "redis.cache", parse_bool, "false", "Cache on Redis."),
    Setting("AUTHLY_REDIS_SESSION", "redis.session", parse_bool, "false", "Sessions on Redis."),
    Setting(
        "AUTHLY_REDIS_POOL_SIZE",
        "redis.pool_size",
        int_parser(1, 1000),
        "10",
        "Redis connections (and pipelines in flight) at most.",
    ),
    Setting(
        "AUTHLY_REDIS_TIMEOUT",
        "redis.connect_timeout",
        int_parser(1, 300),
        "5",
        "Redis connect timeout, seconds.",
    ),
    Setting(
        "AUTHLY_REDIS_KEEPALIVE", "redis.keepalive", parse_bool, "true", "TCP keepalive to Redis."
    ),
    Setting(
        "AUTHLY_REDIS_OP_TIMEOUT_MS",
        "redis.op_timeout_ms",
        int_parser(10, 60_000),
        "250",
        "Deadline of each Redis call on the request path, ms.",
    ),
    Setting(
        "AUTHLY_REDIS_HEALTH_INTERVAL_MS",
        "redis.health_interval_ms",
        int_parser(50, 600_000),
        "500",
        "How often the supervisor PINGs Redis while it is up, ms.",
    ),
)

BY_FIELD: dict[str, Setting] = {s.field: s for s in SETTINGS}
BY_NAME: dict[str, Setting] = {s.name: s for s in SETTINGS}


def static_defaults() -> dict[str, Any]:
    """Every field's default when the environment sets nothing."""
    values: dict[str, Any] = {}
    for setting in SETTINGS:
        values[setting.field] = setting.default_value(values)
    return values


def example_env() -> str:
    """The text of ``configs/authly.example.env``."""
    lines = [
        "# Every Authly setting with its default (generated from src/authly/settings_table.py:",
        "#   python -m authly.settings_table > configs/authly.example.env).",
        "# Copy to .env and export, or pass to docker --env-file. Unset or empty: the default.",
        "# Booleans accept true/false/1/0/yes/no in any case.",
    ]
    for setting in SETTINGS:
        lines.append(f"# {setting.doc}")
        if setting.default is None:
            lines.append(f"#{setting.name}={setting.example}")
        else:
            lines.append(f"{setting.name}={setting.default}")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(example_env(), end="")
