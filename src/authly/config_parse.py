"""Parsers for AUTHLY_* values: text in, value out, or a ValueError naming the problem.

``authly.settings_table`` pairs each variable with one of these; ``Settings.from_env``
turns the ValueError into a ConfigError naming the variable.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from authly.redis.url import RedisUrl, RedisUrlError, check_tls_files, parse_redis_url
from authly.store.urls import check_postgresql_url, masked_database_url

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}
_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
LOG_FORMATS = ("text", "json")


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
        check_tls_files(url)
    except RedisUrlError as exc:
        raise ValueError(str(exc)) from None
    return url


def parse_log_level(text: str) -> str:
    level = text.strip().upper()
    if level not in _LOG_LEVELS:
        raise ValueError(f"must be one of {', '.join(_LOG_LEVELS)}")
    return level


def parse_log_format(text: str) -> str:
    fmt = text.strip().lower()
    if fmt not in LOG_FORMATS:
        raise ValueError(f"must be one of {', '.join(LOG_FORMATS)}")
    return fmt


# AUTHLY_REGISTRATION: who may register clients dynamically (RFC 7591).
REGISTRATION_MODES = ("closed", "token", "open")


def parse_registration_mode(text: str) -> str:
    mode = text.strip().lower()
    if mode not in REGISTRATION_MODES:
        raise ValueError(f"must be one of {', '.join(REGISTRATION_MODES)}")
    return mode


def parse_log_file(text: str) -> str:
    """An absolute path Authly can append to: the file, if it exists, is writable and
    not a directory; otherwise its directory exists and files can be created there.
    (Opening it at start-up checks again: ``authly.core.logs``.)"""
    path = text.strip()
    if "\x00" in path:
        raise ValueError("must be a file path (it contains a NUL byte)")
    path = os.path.abspath(path)
    parent = os.path.dirname(path)
    if os.path.isdir(path):
        raise ValueError(f"{path} is a directory, not a file")
    if os.path.exists(path):
        if not os.access(path, os.W_OK):
            raise ValueError(f"{path} is not writable")
    elif not os.path.isdir(parent):
        raise ValueError(f"directory {parent} does not exist")
    elif not os.access(parent, os.W_OK | os.X_OK):
        raise ValueError(f"cannot create {path}: directory {parent} is not writable")
    return path


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


UNSET = "(unset)"


@dataclass(frozen=True)
class Setting:
    """One AUTHLY_* variable.

    ``field`` is the Settings attribute it fills (``redis.<name>`` for RedisSettings).
    ``default`` is the default as environment text (parsed by ``parse``), or None for
    unset; ``compute`` instead derives the default from the settings read before it, and
    ``default_doc`` says in words what that default is. ``example`` is the value the
    example env file shows, commented out, for a setting without a fixed default.
    """

    name: str
    field: str
    parse: Callable[[str], Any]
    default: str | None
    doc: str
    secret: bool = False
    compute: Callable[[Mapping[str, Any]], Any] | None = None
    default_doc: str | None = None
    example: str = ""

    def default_value(self, earlier: Mapping[str, Any]) -> Any:
        """The value when the variable is unset or blank; ``earlier`` maps the fields
        of the settings before this one to their values."""
        if self.compute is not None:
            return self.compute(earlier)
        return None if self.default is None else self.parse(self.default)

    def shown_default(self) -> str:
        """The default as the documentation tables show it (without backticks)."""
        if self.default_doc is not None:
            return self.default_doc
        if self.default is None:
            return "unset"
        return self.default or "empty"

    def show(self, value: Any) -> str:
        """A value as printable text (``authly check-config``); secrets masked."""
        if value is None:
            return UNSET
        if self.secret:
            return "***"
        if isinstance(value, bool):
            return str(value).lower()
        if isinstance(value, RedisUrl):
            return value.masked()
        if isinstance(value, str) and "://" in value:
            return masked_database_url(value)
        if isinstance(value, tuple):
            return ",".join(str(item) for item in value)
        if isinstance(value, float) and value.is_integer():
            return str(int(value))
        return str(value)
