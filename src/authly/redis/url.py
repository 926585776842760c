"""Parse and mask AUTHLY_REDIS_URL.

Accepted forms (DESIGN §3)::

    redis://host:6379/0
    redis://:password@host:6379/0
    redis://user:password@host:6379/0     (ACL; user and password percent-encoded)
    rediss://host:6380/0?ssl_ca_certs=/path&ssl_cert_reqs=required
    redis://n1:6379,n2:6379,n3:6379/0     (cluster; parsed, not served yet)
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, unquote

from authly.errors import AuthlyError

_SSL_CERT_REQS = ("none", "optional", "required")
_OPTIONS = re.compile(r"\?(?=(?:ssl_ca_certs|ssl_cert_reqs|db)=)")


class RedisUrlError(AuthlyError, ValueError):
    """Raised when a Redis URL cannot be parsed; the message says what is wrong."""


@dataclass(frozen=True)
class RedisUrl:
    hosts: tuple[tuple[str, int], ...]
    db: int = 0
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    tls: bool = False
    ssl_ca_certs: str | None = None
    ssl_cert_reqs: str = "required"

    @property
    def is_cluster(self) -> bool:
        return len(self.hosts) > 1

    @property
    def host(self) -> str:
        return self.hosts[0][0]

    @property
    def port(self) -> int:
        return self.hosts[0][1]

    def masked(self) -> str:
        """The URL with any password replaced by ``***``: safe for logs and /health."""
        scheme = "rediss" if self.tls else "redis"
        auth = ""
        if self.username is not None or self.password is not None:
            auth = f"{self.username or ''}:{'***' if self.password is not None else ''}@"
        hosts = ",".join(f"{_fmt_host(h)}:{p}" for h, p in self.hosts)
        return f"{scheme}://{auth}{hosts}/{self.db}"


def _fmt_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _parse_host(part: str) -> tuple[str, int]:
    if part.startswith("["):
        end = part.find("]")
        if end < 0:
            raise RedisUrlError(f"unclosed '[' in host {part!r}")
        host, rest = part[1:end], part[end + 1 :]
        port_text = rest[1:] if rest.startswith(":") else ""
        if rest and not rest.startswith(":"):
            raise RedisUrlError(f"unexpected text after host {part!r}")
    else:
        host, _, port_text = part.partition(":")
    if not host:
        raise RedisUrlError("missing host")
    if not port_text:
        return host, 6379
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise RedisUrlError(f"bad port {port_text!r}")
    return host, int(port_text)


def parse_redis_url(url: str) -> RedisUrl:
    """Parse a Redis URL; raise RedisUrlError (never echoing the password) if malformed."""
    scheme, sep, rest = url.strip().partition("://")
    if not sep or scheme.lower() not in ("redis", "rediss"):
        raise RedisUrlError("must start with redis:// or rediss://")
    tls = scheme.lower() == "rediss"
    # The options are split off first, then the credentials at the LAST "@", and only
    # then the path: a password with an unencoded "/", "?" or "@" still parses, and no
    # error message below ever quotes text from before that "@".
    options_at = _OPTIONS.search(rest)
    query = ""
    if options_at is not None:
        rest, query = rest[: options_at.start()], rest[options_at.start() + 1 :]
    userinfo, has_at, rest = rest.rpartition("@")
    rest, _, query_tail = rest.partition("?")
    if query_tail:
        raise RedisUrlError("unknown option in the query string")
    rest, _, fragment = rest.partition("#")
    if fragment:
        raise RedisUrlError("fragments are not allowed")
    netloc, _, path = rest.partition("/")
    username = password = None
    if has_at:
        user_text, has_colon, pass_text = userinfo.partition(":")
        username = unquote(user_text) or None
        password = unquote(pass_text) if has_colon else None
        if not has_colon:
            # redis://secret@host is how some tools spell a bare password.
            password, username = username, None
    if not netloc:
        raise RedisUrlError("missing host")
    hosts = tuple(_parse_host(p) for p in netloc.split(","))
    db_text = path.strip("/") or "0"
    if not db_text.isdigit():
        raise RedisUrlError(f"database must be a number, got {db_text!r}")
    options: dict[str, str] = {}
    for key, value in parse_qsl(query, keep_blank_values=True):
        if key == "db":
            if not value.isdigit():
                raise RedisUrlError(f"database must be a number, got {value!r}")
            db_text = value
        elif key in ("ssl_ca_certs", "ssl_cert_reqs"):
            options[key] = value
        else:
            raise RedisUrlError(f"unknown option {key!r}")
    cert_reqs = options.get("ssl_cert_reqs", "required").lower()
    if cert_reqs not in _SSL_CERT_REQS:
        raise RedisUrlError(f"ssl_cert_reqs must be one of {', '.join(_SSL_CERT_REQS)}")
    if options and not tls:
        raise RedisUrlError("ssl_* options need the rediss:// scheme")
    return RedisUrl(
        hosts=hosts,
        db=int(db_text),
        username=username,
        password=password,
        tls=tls,
        ssl_ca_certs=options.get("ssl_ca_certs"),
        ssl_cert_reqs=cert_reqs,
    )
