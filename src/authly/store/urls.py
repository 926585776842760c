"""Database URLs: checked at start-up, and shown with the password masked."""

from __future__ import annotations

from urllib.parse import SplitResult, unquote, urlsplit


def _split(url: str) -> SplitResult:
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError as exc:
        raise ValueError(f"cannot parse the URL: {exc}") from None
    return parts


def check_postgresql_url(url: str) -> str:
    """``url`` if it names a PostgreSQL host and database; ValueError saying what is
    missing otherwise (the message never contains the password)."""
    parts = _split(url)
    if not parts.hostname:
        raise ValueError("a postgresql:// URL needs a host (postgresql://user:pass@host/db)")
    if not unquote(parts.path.lstrip("/")):
        raise ValueError("a postgresql:// URL needs a database name (.../db)")
    return url


def masked_database_url(url: str) -> str:
    """The URL with its password, if any, replaced by ``***``."""
    if not url.startswith(("postgresql://", "postgres://")):
        return url
    try:
        parts = _split(url)
    except ValueError:
        return url.split("://", 1)[0] + "://***"
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.netloc.rsplit("@", 1)[1]
    return parts._replace(netloc=f"{user}:***@{host}").geturl()
