"""Helpers for the DPoP web tests (RFC 9449): clients, token requests with proofs, and
reading an access token's claims."""

from __future__ import annotations

import base64
import json
from typing import Any

from werkzeug.datastructures import Headers

from authly.store import clients as client_repo
from tests.conftest import ISSUER, services_of
from tests.support.dpop import DPoPKey
from tests.web.helpers import basic, json_of, register_client

TOKEN = "/api/v1/oauth/token"
PAR = "/api/v1/oauth/par"
USERINFO = "/oidc/userinfo"
INTROSPECT = "/api/v1/oauth/introspect"
TOKEN_URL = ISSUER + TOKEN
USERINFO_URL = ISSUER + USERINFO
PAR_URL = ISSUER + PAR
SECRET = "svc-secret"
PASSWORD = "alice-password-1"
REDIRECT = "https://app.example/cb"


def claims_of(token: str) -> dict[str, Any]:
    """An access token's payload, not verified."""
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))  # type: ignore[no-any-return]


async def service(
    app: Any, client_id: str = "svc", *, dpop_bound_access_tokens: bool = False, **fields: Any
) -> None:
    """A confidential client_credentials (+ code) client with Basic auth."""
    fields.setdefault("grant_types", ("client_credentials", "authorization_code", "refresh_token"))
    fields.setdefault("scopes", ("openid", "profile", "email"))
    row = await register_client(
        app,
        client_id,
        secret=SECRET,
        auth_method="client_secret_basic",
        redirect_uris=(REDIRECT,),
        **fields,
    )
    if dpop_bound_access_tokens:
        bound = row.with_changes(dpop_bound_access_tokens=True)
        await services_of(app).db.run(client_repo.update, bound)


async def public_app(app: Any, client_id: str = "native", **fields: Any) -> None:
    """A public client with the password grant (so tests need no browser)."""
    fields.setdefault("grant_types", ("password", "refresh_token"))
    fields.setdefault("scopes", ("openid", "profile", "email", "offline_access"))
    fields.setdefault("first_party", True)
    await register_client(app, client_id, **fields)


def dpop_headers(*proofs: str, **extra: str) -> Headers:
    headers = Headers([("DPoP", p) for p in proofs])
    for name, value in extra.items():
        headers.add(name, value)
    return headers


async def client_credentials(client: Any, *proofs: str, client_id: str = "svc") -> Any:
    headers = dpop_headers(*proofs)
    headers.update(basic(client_id, SECRET))
    return await client.post(TOKEN, form={"grant_type": "client_credentials"}, headers=headers)


async def password_grant(
    client: Any, *proofs: str, client_id: str = "native", scope: str = "openid profile"
) -> Any:
    form = {
        "grant_type": "password",
        "client_id": client_id,
        "username": "alice",
        "password": PASSWORD,
        "scope": scope,
    }
    return await client.post(TOKEN, form=form, headers=dpop_headers(*proofs))


async def refresh(client: Any, refresh_token: str, *proofs: str, client_id: str = "native") -> Any:
    data = {"grant_type": "refresh_token", "refresh_token": refresh_token, "client_id": client_id}
    return await client.post(TOKEN, form=data, headers=dpop_headers(*proofs))


async def bound_tokens(client: Any, key: DPoPKey, **kwargs: Any) -> dict[str, Any]:
    """A password grant of ``native`` with a proof of ``key``: DPoP-bound tokens."""
    body: dict[str, Any] = await json_of(
        await password_grant(client, key.proof("POST", TOKEN_URL), **kwargs)
    )
    assert body["token_type"] == "DPoP"
    return body
