"""Parsers for AUTHLY_* values: text in, value out, or a ValueError naming the problem.

``authly.settings_table`` pairs each variable with one of these; ``Settings.from_env``
turns the ValueError into a ConfigError naming the variable.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Callable
from urllib.parse import urlsplit

from authly.redis.url import RedisUrl, RedisUrlError, parse_redis_url
from authly.store.urls import check_postgresql_url

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}
_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


def parse_bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ValueError("must be one of true/false/1/0/yes/no")


def int_parser(lo: int, hi: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text.strip())
        except ValueError:
            raise ValueError(f"must be a whole number, got {text!r}") from None
        if not lo <= value <= hi:
            raise ValueError(f"must be between {lo} and {hi}, got {value}")
        return value

    return parse


def parse_host(text: str) -> str:
    return text.strip()


def parse_issuer(text: str) -> str:
    parts = urlsplit(text.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http:// or https:// URL with a host")
    if parts.query or parts.fragment:
        raise ValueError("must not have a query or fragment (RFC 8414 §2)")
    return text.strip().rstrip("/")


def parse_database_url(text: str) -> str:
    text = text.strip()
    if text.startswith(("postgresql://", "postgres://")):
        return check_postgresql_url(text)
    if not text.startswith("sqlite:///") or len(text) <= len("sqlite:///"):
        raise ValueError(
            "must look like sqlite:///relative/path.db, sqlite:////abs/path.db"
            " or postgresql://user:password@host:port/database"
        )
    return text


def parse_username(text: str) -> str:
    text = text.strip()
    if not 1 <= len(text) <= 64:
        raise ValueError("must be 1 to 64 characters")
    return text


def parse_password(text: str) -> str:
    if len(text) < 8:
        raise ValueError("must be at least 8 characters")
    return text  # as given: spaces may be part of a password


def parse_redis_url_setting(text: str) -> RedisUrl:
    try:
        url = parse_redis_url(text)
    except RedisUrlError as exc:
        raise ValueError(str(exc)) from None
    if url.is_cluster:
        raise ValueError(
            f"Redis Cluster ({url.masked()}) is not supported yet; give one node's URL"
        )
    return url


def parse_log_level(text: str) -> str:
    level = text.strip().upper()
    if level not in _LOG_LEVELS:
        raise ValueError(f"must be one of {', '.join(_LOG_LEVELS)}")
    return level


def parse_networks(text: str) -> tuple[Network, ...]:
    try:
        parts = (p.strip() for p in text.split(","))
        return tuple(ipaddress.ip_network(p, strict=False) for p in parts if p)
    except ValueError as exc:
        raise ValueError(str(exc)) from None


def default_hash_concurrency() -> int:
    """One core fewer than the machine has (at least one): argon2id competes with the
    event loop for CPU, so leaving a core free keeps other requests' latency flat."""
    return max(1, (os.cpu_count() or 2) - 1)


def url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host
