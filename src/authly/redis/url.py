"""Parse and mask AUTHLY_REDIS_URL.

Accepted forms (DESIGN §3)::

    redis://host:6379/0
    redis://:password@host:6379/0
    redis://user:password@host:6379/0     (ACL; user and password percent-encoded)
    rediss://host:6380/0?ssl_ca_certs=/ca.pem&ssl_certfile=/c.pem&ssl_keyfile=/c.key
    redis://n1:6379,n2:6379,n3:6379/0     (Redis Cluster: any reachable nodes, database 0)
    redis+sentinel://:password@s1:26379,s2:26379,s3:26379/mymaster/0
                                          (Sentinel: sentinels, then service name, then db)

TLS options (``rediss://`` only): ``ssl_ca_certs`` (CA bundle to trust), ``ssl_certfile``
and ``ssl_keyfile`` (client certificate, for ``tls-auth-clients yes``), ``ssl_cert_reqs``
(``none``/``optional``/``required``) and ``ssl_check_hostname`` (boolean, default true).
``check_tls_files`` refuses files that cannot be read (at start-up, config_parse.py).

Sentinel (``redis+sentinel://``; a host without a port means 26379): the user and password
are the data nodes' (the master's); the sentinels are asked without AUTH unless the
``sentinel_password`` option (percent-encoded, never printed) gives theirs. No TLS to
sentinels. Here the URL becomes redis-py's keyword arguments (``client_kwargs``,
``sentinel_kwargs``) without importing redis-py: the actor adds the retry policy.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, quote, unquote

from authly.errors import AuthlyError

_SSL_CERT_REQS = ("none", "optional", "required")
_SSL_FILES = ("ssl_ca_certs", "ssl_certfile", "ssl_keyfile")
_SSL_OPTIONS = (*_SSL_FILES, "ssl_cert_reqs", "ssl_check_hostname")
_OPTIONS = re.compile(rf"\?(?=(?:{'|'.join(_SSL_OPTIONS)}|db|sentinel_password)=)")
SENTINEL_SCHEME = "redis+sentinel"
SENTINEL_PORT = 26379
_TRUE, _FALSE = ("true", "1", "yes", "on"), ("false", "0", "no", "off")


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
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None
    ssl_check_hostname: bool = True
    sentinel_service: str | None = None  # redis+sentinel://: the master's service name
    sentinel_password: str | None = field(default=None, repr=False)

    def client_kwargs(
        self, *, pool_size: int, connect_timeout: float, keepalive: bool
    ) -> dict[str, Any]:
        """redis-py's arguments for the data connections, bar host, port and ``retry``."""
        return {
            "db": self.db,
            "username": self.username,
            "password": self.password,
            # No per-read timer: redis-py would arm one per reply (hundreds per pipeline);
            # the actor runs each pipeline as a whole under a Trio deadline instead.
            "socket_timeout": None,
            "socket_connect_timeout": connect_timeout,
            "socket_keepalive": keepalive,
            "max_connections": pool_size,
            "decode_responses": True,
            "health_check_interval": 0,
            "driver_info": None,  # no CLIENT SETINFO: one round trip less, no ACL need
            **self.ssl_kwargs(),  # rediss://: CA, client certificate
        }

    def sentinel_kwargs(self, *, connect_timeout: float, read_timeout: float) -> dict[str, Any]:
        """redis-py's arguments for the connections to the sentinels, bar ``retry``. A
        sentinel that has not answered within ``read_timeout`` (the op timeout) is passed
        over for the next one: a live one answers in well under a millisecond."""
        return {
            "password": self.sentinel_password,
            "socket_connect_timeout": connect_timeout,
            "socket_timeout": read_timeout,
            "health_check_interval": 0,
            "driver_info": None,
        }

    def mask(self, text: str) -> str:
        """``text`` with every password of this URL replaced by ``***``."""
        return mask_password(mask_password(text, self.password), self.sentinel_password)

    def ssl_kwargs(self) -> dict[str, Any]:
        """redis-py's TLS arguments for this URL (empty for ``redis://``)."""
        if not self.tls:
            return {}
        return {
            "ssl": True,
            "ssl_ca_certs": self.ssl_ca_certs,
            "ssl_certfile": self.ssl_certfile,
            "ssl_keyfile": self.ssl_keyfile,
            "ssl_cert_reqs": self.ssl_cert_reqs,
            "ssl_check_hostname": self.ssl_check_hostname and self.ssl_cert_reqs != "none",
        }

    @property
    def is_sentinel(self) -> bool:
        return self.sentinel_service is not None

    @property
    def is_cluster(self) -> bool:
        return len(self.hosts) > 1 and not self.is_sentinel

    @property
    def host(self) -> str:
        return self.hosts[0][0]

    @property
    def port(self) -> int:
        return self.hosts[0][1]

    def masked(self) -> str:
        """The URL with any password replaced by ``***``: safe for logs and /health."""
        scheme = "rediss" if self.tls else "redis"
        path = str(self.db)
        if self.sentinel_service is not None:
            scheme, path = SENTINEL_SCHEME, f"{quote(self.sentinel_service, safe='')}/{path}"
        auth = ""
        if self.username is not None or self.password is not None:
            auth = f"{self.username or ''}:{'***' if self.password is not None else ''}@"
        hosts = ",".join(f"{_fmt_host(h)}:{p}" for h, p in self.hosts)
        return f"{scheme}://{auth}{hosts}/{path}"


def _fmt_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _parse_host(part: str, default_port: int) -> tuple[str, int]:
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
        return host, default_port
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise RedisUrlError(f"bad port {port_text!r}")
    return host, int(port_text)


def parse_redis_url(url: str) -> RedisUrl:
    """Parse a Redis URL; raise RedisUrlError (never echoing the password) if malformed."""
    scheme, sep, rest = url.strip().partition("://")
    scheme = scheme.lower()
    if sep and scheme == "rediss+sentinel":
        raise RedisUrlError(f"TLS with Sentinel is not supported; use {SENTINEL_SCHEME}://")
    if not sep or scheme not in ("redis", "rediss", SENTINEL_SCHEME):
        raise RedisUrlError(f"must start with redis://, rediss:// or {SENTINEL_SCHEME}://")
    tls, sentinel = scheme == "rediss", scheme == SENTINEL_SCHEME
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
    hosts = tuple(_parse_host(p, SENTINEL_PORT if sentinel else 6379) for p in netloc.split(","))
    service = None
    if sentinel:
        service, _, path = path.partition("/")
        service = unquote(service)
        if not service:
            raise RedisUrlError(
                f"missing the Sentinel service name ({SENTINEL_SCHEME}://host:port/service/db)"
            )
    db_text = path.strip("/") or "0"
    if not db_text.isdigit():
        raise RedisUrlError(f"database must be a number, got {db_text!r}")
    options: dict[str, str] = {}
    sentinel_password = None
    for key, value in parse_qsl(query, keep_blank_values=True):
        if key == "db":
            if not value.isdigit():
                raise RedisUrlError(f"database must be a number, got {value!r}")
            db_text = value
        elif key in _SSL_OPTIONS:
            if not value:
                raise RedisUrlError(f"option {key} needs a value")
            options[key] = value
        elif key == "sentinel_password":
            if not sentinel:
                raise RedisUrlError(f"sentinel_password needs the {SENTINEL_SCHEME}:// scheme")
            sentinel_password = value or None
        else:
            raise RedisUrlError(f"unknown option {key!r}")
    cert_reqs = options.get("ssl_cert_reqs", "required").lower()
    if cert_reqs not in _SSL_CERT_REQS:
        raise RedisUrlError(f"ssl_cert_reqs must be one of {', '.join(_SSL_CERT_REQS)}")
    check_hostname = options.get("ssl_check_hostname", "true").lower()
    if check_hostname not in _TRUE + _FALSE:
        raise RedisUrlError("ssl_check_hostname must be true or false")
    if options and sentinel:
        raise RedisUrlError("ssl_* options: TLS with Sentinel is not supported")
    if options and not tls:
        raise RedisUrlError("ssl_* options need the rediss:// scheme")
    if len(hosts) > 1 and not sentinel and int(db_text) != 0:
        raise RedisUrlError(f"a Redis Cluster has database 0 only, got {int(db_text)}")
    if "ssl_keyfile" in options and "ssl_certfile" not in options:
        raise RedisUrlError("ssl_keyfile needs ssl_certfile (the client certificate)")
    return RedisUrl(
        hosts=hosts,
        db=int(db_text),
        username=username,
        password=password,
        tls=tls,
        ssl_ca_certs=options.get("ssl_ca_certs"),
        ssl_cert_reqs=cert_reqs,
        ssl_certfile=options.get("ssl_certfile"),
        ssl_keyfile=options.get("ssl_keyfile"),
        ssl_check_hostname=check_hostname in _TRUE,
        sentinel_service=service,
        sentinel_password=sentinel_password,
    )


def check_tls_files(url: RedisUrl) -> None:
    """Refuse (RedisUrlError) a TLS file option naming a file this process cannot read:
    better one line at start-up than a TLS error at every connection attempt."""
    for name in _SSL_FILES:
        path = getattr(url, name)
        if path is None:
            continue
        if not os.path.isfile(path):
            raise RedisUrlError(f"{name} {path!r}: no such file")
        if not os.access(path, os.R_OK):
            raise RedisUrlError(f"{name} {path!r}: not readable by this process")


def mask_password(text: str, password: str | None) -> str:
    """``text`` with the password (if any, and if it appears) replaced by ``***``."""
    return text.replace(password, "***") if password else text
