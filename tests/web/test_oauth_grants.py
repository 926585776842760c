"""Token endpoint grants, revocation, introspection and metadata (issue 4)."""

from __future__ import annotations

import pytest

from authly.oauth import pkce
from authly.oauth.authorization import AuthorizationCodes, AuthorizationRequest
from tests.conftest import ISSUER, login, services_of
from tests.web.helpers import basic, error_body, json_of, register_client

VERIFIER = "v" * 43 + "-verifier._~"
REDIRECT = "https://app.example/cb"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


async def post(client, path: str, data: dict[str, str], headers: dict[str, str] | None = None):
    return await client.post(f"/api/v1/oauth/{path}", form=data, headers=headers or {})


async def confidential(app, client_id="svc", secret="svc-secret", **kw):
    kw.setdefault("grant_types", ("client_credentials", "authorization_code", "refresh_token"))
    kw.setdefault("scopes", ("profile", "email"))
    return await register_client(
        app,
        client_id,
        secret=secret,
        auth_method="client_secret_basic",
        redirect_uris=(REDIRECT,),
        **kw,
    )


async def new_code(
    app,
    client_id: str,
    user_id: str,
    *,
    scope="profile",
    verifier=VERIFIER,
    redirect_given=REDIRECT,
    ttl=60.0,
) -> str:
    request = AuthorizationRequest(
        client_id=client_id,
        client_name=client_id,
        first_party=False,
        redirect_uri=REDIRECT,
        redirect_uri_given=redirect_given,
        scope=scope,
        state="xyz",
        code_challenge=pkce.s256(verifier),
    )
    return await AuthorizationCodes(services_of(app).db, ttl=ttl).create(request, user_id)


async def refresh_svc(client, refresh_token: str):
    data = {"grant_type": "refresh_token", "refresh_token": refresh_token}
    return await post(client, "token", data, basic("svc", "svc-secret"))


async def admin_id(client) -> str:
    tokens = await json_of(await login(client))
    me = await client.get(
        "/api/v1/users/me", headers={"Authorization": f"Bearer {tokens['access_token']}"}
    )
    return (await me.get_json())["id"]


async def exchange(
    client, code, *, client_id="svc", secret="svc-secret", verifier=VERIFIER, redirect_uri=REDIRECT
):
    data = {"grant_type": "authorization_code", "code": code, "code_verifier": verifier}
    if redirect_uri is not None:
        data["redirect_uri"] = redirect_uri
    return await post(client, "token", data, basic(client_id, secret))


# ---- client_credentials ----------------------------------------------------------------


async def test_client_credentials_issues_an_access_token_only(app, client):
    await confidential(app)
    response = await post(
        client, "token", {"grant_type": "client_credentials"}, basic("svc", "svc-secret")
    )
    body = await json_of(response)
    assert "refresh_token" not in body
    assert body["scope"] == "email profile"
    claims = services_of(app).tokens.access.verify(body["access_token"])
    assert (claims.subject, claims.client_id) == ("svc", "svc")
    assert response.headers["Cache-Control"] == "no-store"


async def test_client_credentials_with_post_auth_and_narrow_scope(app, client):
    await register_client(
        app,
        "svc2",
        secret="pw",
        auth_method="client_secret_post",
        grant_types=("client_credentials",),
        scopes=("profile", "email"),
    )
    body = await json_of(
        await post(
            client,
            "token",
            {
                "grant_type": "client_credentials",
                "client_id": "svc2",
                "client_secret": "pw",
                "scope": "email",
            },
        )
    )
    assert body["scope"] == "email"


@pytest.mark.parametrize("secret", ["wrong", ""])
async def test_wrong_client_secret_is_401_invalid_client(app, client, secret):
    await confidential(app)
    response = await post(
        client, "token", {"grant_type": "client_credentials"}, basic("svc", secret)
    )
    assert (await error_body(response, 401))["error"] == "invalid_client"
    assert response.headers["WWW-Authenticate"] == 'Basic realm="authly"'


async def test_client_credentials_scope_escalation_and_public_clients(app, client):
    await confidential(app)
    response = await post(
        client,
        "token",
        {"grant_type": "client_credentials", "scope": "admin"},
        basic("svc", "svc-secret"),
    )
    assert (await error_body(response, 400))["error"] == "invalid_scope"
    await register_client(app, "spa", grant_types=("client_credentials",))
    response = await post(client, "token", {"grant_type": "client_credentials", "client_id": "spa"})
    assert (await error_body(response, 400))["error"] == "unauthorized_client"


async def test_grant_not_registered_for_client_is_unauthorized_client(app, client):
    await confidential(app, grant_types=("authorization_code",))
    response = await post(
        client, "token", {"grant_type": "client_credentials"}, basic("svc", "svc-secret")
    )
    assert (await error_body(response, 400))["error"] == "unauthorized_client"
    response = await post(
        client,
        "token",
        {"grant_type": "password", "username": "admin", "password": "x"},
        basic("svc", "svc-secret"),
    )
    assert (await error_body(response, 400))["error"] == "unauthorized_client"


@pytest.mark.parametrize(
    ("secret", "expected"),
    [("svc-secret", [200, 200, 200, 429, 429]), ("wrong", [401, 401, 401, 429, 429])],
)
async def test_token_endpoint_is_rate_limited(settings_factory, secret, expected):
    """Per client once authenticated, and per address before: failed client
    authentications count too."""
    from tests.web.helpers import running_app

    async with running_app(settings_factory(token_rate_limit=3)) as app:
        client = app.test_client()
        await confidential(app)
        statuses = []
        for _ in range(5):
            data = {"grant_type": "client_credentials"}
            response = await post(client, "token", data, basic("svc", secret))
            statuses.append(response.status_code)
        assert statuses == expected
        assert int(response.headers["Retry-After"]) >= 1


# ---- authorization_code -------------------------------------------------------------------


async def test_code_exchange_issues_tokens_once(app, client):
    await confidential(app)
    code = await new_code(app, "svc", await admin_id(client))
    body = await json_of(await exchange(client, code))
    assert body["scope"] == "profile"
    assert body["refresh_token"]
    me = await client.get(
        "/api/v1/users/me", headers={"Authorization": f"Bearer {body['access_token']}"}
    )
    assert me.status_code == 200


async def test_code_replay_fails_and_revokes_everything_it_issued(app, client):
    await confidential(app)
    code = await new_code(app, "svc", await admin_id(client))
    first = await json_of(await exchange(client, code))
    replay = await exchange(client, code)
    assert (await error_body(replay, 400))["error"] == "invalid_grant"
    me = await client.get(
        "/api/v1/users/me", headers={"Authorization": f"Bearer {first['access_token']}"}
    )
    assert me.status_code == 401
    refreshed = await refresh_svc(client, first["refresh_token"])
    assert (await error_body(refreshed, 400))["error"] == "invalid_grant"


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"verifier": "w" * 43}, "invalid_grant"),
        ({"redirect_uri": "https://app.example/other"}, "invalid_grant"),
        ({"redirect_uri": None}, "invalid_grant"),
    ],
)
async def test_code_is_bound_to_verifier_and_redirect_uri(app, client, change, expected):
    await confidential(app)
    code = await new_code(app, "svc", await admin_id(client))
    response = await exchange(client, code, **change)
    assert (await error_body(response, 400))["error"] == expected


async def test_code_used_by_another_client_fails(app, client):
    await confidential(app)
    await confidential(app, client_id="other", secret="other-secret")
    code = await new_code(app, "svc", await admin_id(client))
    response = await exchange(client, code, client_id="other", secret="other-secret")
    assert (await error_body(response, 400))["error"] == "invalid_grant"


async def test_expired_code_fails(app, client):
    await confidential(app)
    code = await new_code(app, "svc", await admin_id(client), ttl=-1)
    assert (await error_body(await exchange(client, code), 400))["error"] == "invalid_grant"


async def test_refresh_from_code_flow_rotates_and_detects_reuse(app, client):
    await confidential(app)
    first = await json_of(
        await exchange(client, await new_code(app, "svc", await admin_id(client)))
    )
    data = {"grant_type": "refresh_token", "refresh_token": first["refresh_token"]}
    second = await json_of(await post(client, "token", data, basic("svc", "svc-secret")))
    reuse = await post(client, "token", data, basic("svc", "svc-secret"))
    assert (await error_body(reuse, 400))["error"] == "invalid_grant"
    again = await refresh_svc(client, second["refresh_token"])
    assert (await error_body(again, 400))["error"] == "invalid_grant"


# ---- revocation and introspection --------------------------------------------------------


async def test_revoking_an_access_token_is_honoured_everywhere(app, client):
    await confidential(app)
    tokens = await json_of(
        await exchange(client, await new_code(app, "svc", await admin_id(client)))
    )
    access = tokens["access_token"]
    active = await json_of(
        await post(client, "introspect", {"token": access}, basic("svc", "svc-secret"))
    )
    assert active["active"] is True
    assert active["client_id"] == "svc"
    revoked = await post(
        client,
        "revoke",
        {"token": access, "token_type_hint": "access_token"},
        basic("svc", "svc-secret"),
    )
    assert revoked.status_code == 200
    inactive = await json_of(
        await post(client, "introspect", {"token": access}, basic("svc", "svc-secret"))
    )
    assert inactive == {"active": False}
    me = await client.get("/api/v1/users/me", headers={"Authorization": f"Bearer {access}"})
    assert me.status_code == 401


async def test_a_client_cannot_revoke_another_clients_tokens(app, client):
    await confidential(app)
    await confidential(app, client_id="other", secret="other-secret")
    tokens = await json_of(
        await exchange(client, await new_code(app, "svc", await admin_id(client)))
    )
    for token in (tokens["access_token"], tokens["refresh_token"]):
        response = await post(client, "revoke", {"token": token}, basic("other", "other-secret"))
        assert response.status_code == 200  # RFC 7009: no oracle...
    still = await json_of(
        await post(
            client, "introspect", {"token": tokens["access_token"]}, basic("svc", "svc-secret")
        )
    )
    assert still["active"] is True  # ...and no effect
    refresh = await refresh_svc(client, tokens["refresh_token"])
    assert refresh.status_code == 200


async def test_revoking_a_refresh_token_ends_its_family(app, client):
    await confidential(app)
    tokens = await json_of(
        await exchange(client, await new_code(app, "svc", await admin_id(client)))
    )
    await post(client, "revoke", {"token": tokens["refresh_token"]}, basic("svc", "svc-secret"))
    refresh = await refresh_svc(client, tokens["refresh_token"])
    assert (await error_body(refresh, 400))["error"] == "invalid_grant"
    me = await client.get(
        "/api/v1/users/me", headers={"Authorization": f"Bearer {tokens['access_token']}"}
    )
    assert me.status_code == 401


async def test_unknown_token_revocation_is_200(app, client):
    await confidential(app)
    response = await post(client, "revoke", {"token": "nope"}, basic("svc", "svc-secret"))
    assert response.status_code == 200


async def test_introspection_needs_an_authenticated_confidential_client(app, client):
    await register_client(app, "spa")
    tokens = await json_of(await login(client))
    response = await post(
        client, "introspect", {"token": tokens["access_token"], "client_id": "spa"}
    )
    assert (await error_body(response, 401))["error"] == "invalid_client"
    response = await post(client, "introspect", {"token": tokens["access_token"]})
    assert response.status_code == 401


@pytest.mark.parametrize("token", ["garbage", "a.b.c", "x" * 600])
async def test_introspecting_garbage_is_inactive(app, client, token):
    await confidential(app)
    body = await json_of(
        await post(client, "introspect", {"token": token}, basic("svc", "svc-secret"))
    )
    assert body == {"active": False}


async def test_refresh_tokens_are_described_to_their_own_client_only(app, client):
    await confidential(app)
    await confidential(app, client_id="other", secret="other-secret")
    tokens = await json_of(
        await exchange(client, await new_code(app, "svc", await admin_id(client)))
    )
    own = await json_of(
        await post(
            client,
            "introspect",
            {"token": tokens["refresh_token"], "token_type_hint": "refresh_token"},
            basic("svc", "svc-secret"),
        )
    )
    assert own["active"] is True
    assert own["token_type"] == "refresh_token"
    foreign = await json_of(
        await post(
            client, "introspect", {"token": tokens["refresh_token"]}, basic("other", "other-secret")
        )
    )
    assert foreign == {"active": False}


# ---- metadata ----------------------------------------------------------------------------


async def test_metadata_comes_from_configuration_not_headers(app, client):
    response = await client.get(
        "/.well-known/oauth-authorization-server",
        headers={"Host": "evil.example", "X-Forwarded-Host": "evil.example"},
    )
    body = await json_of(response)
    assert body["issuer"] == ISSUER
    assert body["token_endpoint"] == f"{ISSUER}/api/v1/oauth/token"
    assert body["authorization_endpoint"] == f"{ISSUER}/api/v1/oauth/authorize"
    assert body["code_challenge_methods_supported"] == ["S256"]
    assert body["response_types_supported"] == ["code"]
    assert body["authorization_response_iss_parameter_supported"] is True
    assert "evil" not in (await response.get_data(as_text=True))
    assert set(body["scopes_supported"]) >= {"profile", "email", "offline_access"}
    # Every advertised endpoint is actually served (POST-only ones answer 4xx, not 404).
    for key in ("token_endpoint", "revocation_endpoint", "introspection_endpoint"):
        path = body[key].removeprefix(ISSUER)
        assert (await client.post(path, form={})).status_code in (400, 401)
    jwks = await client.get(body["jwks_uri"].removeprefix(ISSUER))
    assert jwks.status_code == 200


async def test_revocation_searches_every_type_whatever_the_hint(app, client):
    await confidential(app)
    tokens = await json_of(
        await exchange(client, await new_code(app, "svc", await admin_id(client)))
    )
    await post(
        client,
        "revoke",
        {"token": tokens["refresh_token"], "token_type_hint": "access_token"},
        basic("svc", "svc-secret"),
    )
    refresh = await refresh_svc(client, tokens["refresh_token"])
    assert (await error_body(refresh, 400))["error"] == "invalid_grant"


async def test_public_clients_are_limited_per_address_not_per_client_id(settings_factory):
    from tests.web.helpers import from_ip, running_app

    async with running_app(settings_factory(token_rate_limit=3)) as app:
        client = app.test_client()
        await register_client(app, "spa", grant_types=("refresh_token", "password"))
        form = {"grant_type": "refresh_token", "client_id": "spa", "refresh_token": "x"}

        async def attempt(address: str):
            return await client.post("/api/v1/oauth/token", form=form, scope_base=from_ip(address))

        for _ in range(3):  # one address spends its own budget...
            await attempt("198.51.100.1")
        assert (await attempt("198.51.100.1")).status_code == 429
        victim = await attempt("198.51.100.2")
        assert (await error_body(victim, 400))["error"] == "invalid_grant"  # ...not others'


async def test_refresh_drops_scopes_the_client_no_longer_has(app, client):
    from authly.store import clients as client_repo

    row = await confidential(app)
    tokens = await json_of(
        await exchange(
            client, await new_code(app, "svc", await admin_id(client), scope="email profile")
        )
    )
    await services_of(app).db.run(client_repo.update, row.with_changes(scopes=("profile",)))
    body = await json_of(await refresh_svc(client, tokens["refresh_token"]))
    assert body["scope"] == "profile"


async def test_a_failed_redemption_burns_the_code_without_claiming_revocation(app, client):
    await confidential(app)
    code = await new_code(app, "svc", await admin_id(client))
    await exchange(client, code, verifier="w" * 43)
    again = await error_body(await exchange(client, code), 400)
    assert again["error"] == "invalid_grant"
    assert "revoked" not in again["error_description"]
