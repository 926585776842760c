"""One measured request of each bench_core scenario but the code flows (core_code_flow.py).

Every scenario request has the same signature, ``(client, job, token) -> token``: the
token is the worker's, from its set-up (refresh: its current refresh token, which the
request replaces; introspection: the access token it introspects). Anything but the
expected answer raises BadResponse, whose message is the error kind the table shows.
"""

from __future__ import annotations

import base64
import json
from typing import TYPE_CHECKING
from urllib.parse import quote, urlencode

import trio

from benchkit.httpclient import Client

if TYPE_CHECKING:
    from benchkit.core_load import Job

HEALTH_PATH = "/health"
JWKS_PATH = "/.well-known/jwks.json"
LOGIN_PATH = "/api/v1/auth/login"
TOKEN_PATH = "/api/v1/oauth/token"
INTROSPECT_PATH = "/api/v1/oauth/introspect"
DISCOVERY_PATH = "/.well-known/openid-configuration"
USERINFO_PATH = "/oidc/userinfo"
JSON_TYPE = "application/json"
FORM_TYPE = "application/x-www-form-urlencoded"
SERVICE_CLIENT_ID = "bench-svc"  # confidential: client_credentials, introspection
RP_CLIENT_ID = "bench-rp"  # public, first party, openid: userinfo (password grant), oidc_flow
RP_SCOPE = "openid profile email"


class BadResponse(Exception):
    """An answer the scenario cannot use; the message is the error kind shown."""


def error_kind(exc: BaseException) -> str:
    if isinstance(exc, BadResponse):
        return str(exc)
    if isinstance(exc, trio.TooSlowError):
        return "timeout"
    return f"{type(exc).__name__}: {exc}"[:80]


def check(status: int) -> None:
    if not 200 <= status < 300:
        raise BadResponse(f"HTTP {status}")


def token_field(body: bytes, name: str) -> str:
    """A non-empty string field of a 2xx token response, or BadResponse."""
    try:
        token = json.loads(body)[name]
    except (ValueError, KeyError, TypeError):
        token = None
    if not isinstance(token, str) or not token:
        article = "an" if name[0] in "aeiou" else "a"
        raise BadResponse(f"2xx without {article} {name}")
    return token


async def get(client: Client, path: str) -> None:
    status, _ = await client.request("GET", path)
    check(status)


async def health(client: Client, job: Job, token: str | None) -> None:
    await get(client, HEALTH_PATH)


async def jwks(client: Client, job: Job, token: str | None) -> None:
    await get(client, JWKS_PATH)


async def discovery(client: Client, job: Job, token: str | None) -> None:
    await get(client, DISCOVERY_PATH)


async def login(client: Client, job: Job, token: str | None = None) -> str:
    """POST /api/v1/auth/login; the refresh token it answers with."""
    body = json.dumps({"username": job.username, "password": job.password}).encode()
    status, payload = await client.request("POST", LOGIN_PATH, body, JSON_TYPE)
    check(status)
    return token_field(payload, "refresh_token")


async def refresh(client: Client, job: Job, token: str | None) -> str:
    """The next link of the worker's rotation chain (each refresh token is single use)."""
    assert token is not None
    body = urlencode({"grant_type": "refresh_token", "refresh_token": token}).encode()
    status, payload = await client.request("POST", TOKEN_PATH, body, FORM_TYPE)
    check(status)
    return token_field(payload, "refresh_token")


def basic_auth(client_id: str, secret: str) -> tuple[str, str]:
    """RFC 6749 §2.3.1: both parts form-encoded, then Basic."""
    pair = f"{quote(client_id, safe='')}:{quote(secret, safe='')}"
    return ("Authorization", "Basic " + base64.b64encode(pair.encode()).decode("ascii"))


async def client_credentials(client: Client, job: Job, token: str | None = None) -> str:
    """A client_credentials grant of bench-svc; its access token."""
    body = urlencode({"grant_type": "client_credentials"}).encode()
    auth = basic_auth(SERVICE_CLIENT_ID, job.client_secret)
    status, payload = await client.request("POST", TOKEN_PATH, body, FORM_TYPE, (auth,))
    check(status)
    return token_field(payload, "access_token")


async def introspection(client: Client, job: Job, token: str | None) -> None:
    """Introspect the worker's access token as bench-svc; it must be active."""
    assert token is not None
    body = urlencode({"token": token}).encode()
    auth = basic_auth(SERVICE_CLIENT_ID, job.client_secret)
    status, payload = await client.request("POST", INTROSPECT_PATH, body, FORM_TYPE, (auth,))
    check(status)
    try:
        active = json.loads(payload)["active"]
    except (ValueError, KeyError, TypeError):
        raise BadResponse("2xx without an active member") from None
    if active is not True:
        raise BadResponse("introspection answered active != true")


async def password_token(client: Client, job: Job, token: str | None = None) -> str:
    """A password grant of bench-rp for scope openid profile email; its access token."""
    fields = {"grant_type": "password", "client_id": RP_CLIENT_ID, "scope": RP_SCOPE}
    body = urlencode({**fields, "username": job.username, "password": job.password}).encode()
    status, payload = await client.request("POST", TOKEN_PATH, body, FORM_TYPE)
    check(status)
    return token_field(payload, "access_token")


async def userinfo(client: Client, job: Job, token: str | None) -> None:
    """GET /oidc/userinfo with the worker's bearer token; the answer must name a sub."""
    assert token is not None
    auth = ("Authorization", f"Bearer {token}")
    status, payload = await client.request("GET", USERINFO_PATH, headers=(auth,))
    check(status)
    token_field(payload, "sub")
