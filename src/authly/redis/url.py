"""Parse and mask AUTHLY_REDIS_URL.

Accepted forms (DESIGN §3)::

    redis://host:6379/0
    redis://:password@host:6379/0
    redis://user:password@host:6379/0     (ACL; user and password percent-encoded)
    rediss://host:6380/0?ssl_ca_certs=/ca.pem&ssl_certfile=/c.pem&ssl_keyfile=/c.key
    redis://n1:6379,n2:6379,n3:6379/0     (cluster; parsed, not served yet)

TLS options (``rediss://`` only): ``ssl_ca_certs`` (CA bundle to trust), ``ssl_certfile``
and ``ssl_keyfile`` (client certificate, for ``tls-auth-clients yes``), ``ssl_cert_reqs``
(``none``/``optional``/``required``) and ``ssl_check_hostname`` (boolean, default true).
``check_tls_files`` refuses files that cannot be read (at start-up, config_parse.py).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, unquote

from authly.errors import AuthlyError

_SSL_CERT_REQS = ("none", "optional", "required")
_SSL_FILES = ("ssl_ca_certs", "ssl_certfile", "ssl_keyfile")
_SSL_OPTIONS = (*_SSL_FILES, "ssl_cert_reqs", "ssl_check_hostname")
_OPTIONS = re.compile(rf"\?(?=(?:{'|'.join(_SSL_OPTIONS)}|db)=)")
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
        elif key in _SSL_OPTIONS:
            if not value:
                raise RedisUrlError(f"option {key} needs a value")
            options[key] = value
        else:
            raise RedisUrlError(f"unknown option {key!r}")
    cert_reqs = options.get("ssl_cert_reqs", "required").lower()
    if cert_reqs not in _SSL_CERT_REQS:
        raise RedisUrlError(f"ssl_cert_reqs must be one of {', '.join(_SSL_CERT_REQS)}")
    check_hostname = options.get("ssl_check_hostname", "true").lower()
    if check_hostname not in _TRUE + _FALSE:
        raise RedisUrlError("ssl_check_hostname must be true or false")
    if options and not tls:
        raise RedisUrlError("ssl_* options need the rediss:// scheme")
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
