"""A TLS redis-server with the least-privilege ACL user of docs/redis.md, for tests.

``tls_acl_server(nursery, directory)`` makes a CA, a server certificate for 127.0.0.1
and a client certificate (tests/support/certs.py), and starts (not yet: call
``start()``) a redis-server that serves TLS only, asks for client certificates and knows
the user ``authly`` with exactly ``ACL_RULES``. The ``default`` user stays open
(no password) for the tests' own readiness pings and ``ACL LOG`` checks.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

import trio

from tests.redis_server import RedisServer
from tests.support.certs import Pki, make_pki
from tests.support.processes import RedisTls

ACL_USER = "authly"
ACL_PASSWORD = "pw-acl-3d9f1b7e"

# Every command Authly sends (backends/redis.py, supervisor.py, the actor's SCRIPT LOAD
# after NOSCRIPT, SELECT for a database other than 0) and every command its Lua scripts
# (redis/lua/*.lua) call: Redis checks those against the caller's ACL too.
AUTHLY_COMMANDS = (
    "ping", "select", "get", "set", "del", "exists", "pexpire", "pttl", "scan", "hgetall",
    "hset", "zadd", "zcard", "zrange", "zrem", "zremrangebyscore", "zpopmin", "time",
    "evalsha", "script|load",
)  # fmt: skip
ACL_RULES = "~authly:* resetchannels -@all " + " ".join(f"+{c}" for c in AUTHLY_COMMANDS)
# The line docs/redis.md tells operators to paste (redis.conf or an aclfile).
ACL_LINE = f"user authly on >CHANGE-ME {ACL_RULES}"


def acl_args(rules: str = ACL_RULES, password: str = ACL_PASSWORD) -> list[str]:
    """redis-server arguments defining the user ``authly`` with ``rules``."""
    return ["--user", ACL_USER, "on", f">{password}", *rules.split()]


def server_tls(pki: Pki, *, auth_clients: bool = True) -> RedisTls:
    return RedisTls(
        pki.server_cert,
        pki.server_key,
        pki.ca_cert,
        auth_clients=auth_clients,
        client_cert=pki.client_cert,
        client_key=pki.client_key,
    )


def tls_url(
    server: RedisServer,
    *,
    ca: Path,
    client: Pki | None = None,
    user: str | None = ACL_USER,
    password: str | None = ACL_PASSWORD,
    db: int = 0,
) -> str:
    """A rediss:// URL for ``server`` trusting ``ca``, with ``client``'s certificate
    (no credentials at all with ``user=None, password=None``)."""
    auth = ""
    if user is not None or password is not None:
        auth = f"{quote(user or '', safe='')}:{quote(password or '', safe='')}@"
    options = f"ssl_ca_certs={quote(str(ca))}"
    if client is not None:
        options += f"&ssl_certfile={quote(str(client.client_cert))}"
        options += f"&ssl_keyfile={quote(str(client.client_key))}"
    return f"rediss://{auth}127.0.0.1:{server.port}/{db}?{options}"


def tls_acl_server(
    nursery: trio.Nursery,
    directory: Path,
    *,
    rules: str = ACL_RULES,
    auth_clients: bool = True,
) -> tuple[RedisServer, Pki]:
    pki = make_pki(directory)
    server = RedisServer(
        nursery, tls=server_tls(pki, auth_clients=auth_clients), extra_args=acl_args(rules)
    )
    return server, pki
