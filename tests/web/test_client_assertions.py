"""private_key_jwt and client_secret_jwt (RFC 7523 §2.2, OpenID Connect Core §9) at the
token, introspection and revocation endpoints and the first-party logout, through the
app: the grant, single use (also under concurrency and across instances on Redis),
jwks_uri, and malformed assertions (always a §5.2 error, never a 500). Registration
through the admin API and discovery: test_client_assertion_registration.py."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
import trio

from authly.backends.memory import MemoryCache
from authly.factory import create_app
from authly.oauth.jwks_fetch import RemoteJwks
from tests.conftest import ISSUER, services_of
from tests.supervisor_helpers import steady_redis_settings
from tests.support.assertions import (
    ASSERTION_TYPE,
    assertion_form,
    ec_key,
    jwks_server,
    jwks_text,
    rsa_key,
    sign,
)
from tests.web.helpers import (
    LOGOUT,
    TOKEN,
    basic,
    error_body,
    json_of,
    register_client,
)

TOKEN_URL = f"{ISSUER}{TOKEN}"
INTROSPECT = "/api/v1/oauth/introspect"
REVOKE = "/api/v1/oauth/revoke"
SECRET = "client-secret-jwt-value-0123456789abcdefghij"
KEY = rsa_key("key-1")
EC = ec_key("key-2")


async def pkjwt_client(app: Any, client_id: str = "svc", **fields: Any) -> None:
    fields.setdefault("jwks", jwks_text(KEY, EC))
    await register_client(
        app,
        client_id,
        auth_method="private_key_jwt",
        grant_types=("client_credentials",),
        scopes=("profile",),
        **fields,
    )


async def secret_jwt_client(app: Any, client_id: str = "hmac") -> None:
    await register_client(
        app,
        client_id,
        auth_method="client_secret_jwt",
        secret=SECRET,
        grant_types=("client_credentials",),
        scopes=("profile",),
    )


async def client_credentials(client: Any, assertion: str, **params: str) -> Any:
    form = assertion_form(assertion, grant_type="client_credentials", **params)
    return await client.post(TOKEN, form=form)


def payload(token: str) -> dict[str, Any]:
    part = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


# --- the grant ----------------------------------------------------------------------------


@pytest.mark.parametrize(("key", "alg"), [(KEY, "RS256"), (KEY, "PS256"), (EC, "ES256")])
@pytest.mark.parametrize("aud", [TOKEN_URL, ISSUER, [ISSUER, "https://other.example"]])
async def test_private_key_jwt_gets_a_client_credentials_token(app, client, key, alg, aud):
    await pkjwt_client(app)
    answer = await json_of(await client_credentials(client, sign(key, "svc", aud, alg=alg)))
    assert payload(answer["access_token"])["sub"] == "svc"
    assert answer["scope"] == "profile"


async def test_client_secret_jwt_gets_a_token_with_each_hmac(app, client):
    await secret_jwt_client(app)
    for alg in ("HS256", "HS384", "HS512"):
        response = await client_credentials(client, sign(SECRET, "hmac", TOKEN_URL, alg=alg))
        assert payload((await json_of(response))["access_token"])["sub"] == "hmac"


async def test_client_id_in_the_body_must_be_the_assertions(app, client):
    await pkjwt_client(app)
    ok = await client_credentials(client, sign(KEY, "svc", TOKEN_URL), client_id="svc")
    assert ok.status_code == 200
    other = await client_credentials(client, sign(KEY, "svc", TOKEN_URL), client_id="authly")
    body = await error_body(other, 401)
    assert body["error"] == "invalid_client"


async def test_an_assertion_is_used_once(app, client):
    await pkjwt_client(app)
    assertion = sign(KEY, "svc", TOKEN_URL)
    assert (await client_credentials(client, assertion)).status_code == 200
    replay = await client_credentials(client, assertion)
    body = await error_body(replay, 401)
    assert body == {
        "error": "invalid_client",
        "error_description": "The client assertion was already used (jti).",
    }
    assert replay.headers["WWW-Authenticate"] == 'Basic realm="authly"'
    assert replay.headers["Cache-Control"] == "no-store"


async def test_introspection_and_revocation_take_assertions(app, client):
    await pkjwt_client(app)
    access = (await json_of(await client_credentials(client, sign(KEY, "svc", TOKEN_URL))))[
        "access_token"
    ]
    # aud may be the endpoint called, the token endpoint or the issuer.
    for aud in (f"{ISSUER}{INTROSPECT}", TOKEN_URL, ISSUER):
        form = assertion_form(sign(KEY, "svc", aud), token=access)
        assert (await json_of(await client.post(INTROSPECT, form=form)))["active"] is True
    wrong = assertion_form(sign(KEY, "svc", f"{ISSUER}{REVOKE}"), token=access)
    assert (await error_body(await client.post(INTROSPECT, form=wrong), 401))["error"] == (
        "invalid_client"
    )
    revoke = assertion_form(sign(KEY, "svc", f"{ISSUER}{REVOKE}"), token=access)
    assert (await client.post(REVOKE, form=revoke)).status_code == 200
    form = assertion_form(sign(KEY, "svc", ISSUER), token=access)
    assert await json_of(await client.post(INTROSPECT, form=form)) == {"active": False}


async def test_the_json_logout_takes_assertions(app, client):
    await pkjwt_client(app)
    body = {
        "refresh_token": "not-a-token-of-this-client",
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": sign(KEY, "svc", TOKEN_URL),
    }
    assert (await client.post(LOGOUT, json=body)).status_code == 200
    body["client_assertion"] = sign(rsa_key("key-1"), "svc", TOKEN_URL)  # not its key
    assert (await error_body(await client.post(LOGOUT, json=body), 401))["error"] == (
        "invalid_client"
    )


# --- malformed and refused assertions: 4xx in RFC 6749 §5.2 shape, never a 500 ------------


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _with_header(token: str, header: dict[str, Any]) -> str:
    _, body, signature = token.split(".")
    return f"{_b64(json.dumps(header).encode())}.{body}.{signature}"


def _bad_forms() -> list[Any]:
    good = assertion_form
    cases: list[tuple[str, Any, int, str]] = [
        ("not a JWT", good("not-a-jwt"), 401, "invalid_client"),
        ("bad base64", good("%%%.###.@@@"), 401, "invalid_client"),
        ("JSON that is no object", good(f"{_b64(b'[]')}.{_b64(b'[]')}.x"), 401, "invalid_client"),
        ("HS256 for a key pair", good(sign(SECRET, "svc", TOKEN_URL, alg="HS256")), 401,
         "invalid_client"),
        ("alg none", good(_with_header(sign(KEY, "svc", TOKEN_URL), {"alg": "none"})), 401,
         "invalid_client"),
        ("RS512", good(_with_header(sign(KEY, "svc", TOKEN_URL), {"alg": "RS512"})), 401,
         "invalid_client"),
        ("no exp", good(sign(KEY, "svc", TOKEN_URL, exp=None)), 401, "invalid_client"),
        ("no jti", good(sign(KEY, "svc", TOKEN_URL, jti=None)), 401, "invalid_client"),
        ("no iss", good(sign(KEY, "svc", TOKEN_URL, iss=None)), 401, "invalid_client"),
        ("expired", good(sign(KEY, "svc", TOKEN_URL, lifetime=-120)), 401, "invalid_client"),
        ("too long", good(sign(KEY, "svc", TOKEN_URL, iat=None, lifetime=3600)), 401,
         "invalid_client"),
        ("wrong aud", good(sign(KEY, "svc", "https://evil.example/token")), 401,
         "invalid_client"),
        ("unknown kid", good(sign(rsa_key("nope"), "svc", TOKEN_URL)), 401, "invalid_client"),
        ("other key, same kid", good(sign(rsa_key("key-1"), "svc", TOKEN_URL)), 401,
         "invalid_client"),
        ("unknown client", good(sign(KEY, "ghost", TOKEN_URL)), 401, "invalid_client"),
        ("odd client id", good(sign(KEY, "\n", TOKEN_URL)), 401, "invalid_client"),
        ("wrong type", {"client_assertion_type": "urn:x", "client_assertion": "a.b.c"}, 401,
         "invalid_client"),
        ("type alone", {"client_assertion_type": ASSERTION_TYPE}, 400, "invalid_request"),
        ("assertion alone", {"client_assertion": sign(KEY, "svc", TOKEN_URL)}, 400,
         "invalid_request"),
        ("assertion and secret", good(sign(KEY, "svc", TOKEN_URL), client_secret="x"), 400,
         "invalid_request"),
        ("huge", good("a." + "b" * 9000 + ".c"), 401, "invalid_client"),
    ]  # fmt: skip
    return [pytest.param(form, status, error, id=name) for name, form, status, error in cases]


@pytest.mark.parametrize(("form", "status", "error"), _bad_forms())
async def test_bad_assertions_are_refused_cleanly(app, client, form, status, error):
    await pkjwt_client(app)
    response = await client.post(TOKEN, form={"grant_type": "client_credentials", **form})
    body = await error_body(response, status)
    assert body["error"] == error
    assert "Traceback" not in body["error_description"]


async def test_a_reused_jti_with_a_new_signature_is_refused(app, client):
    await pkjwt_client(app)
    first = await client_credentials(client, sign(KEY, "svc", TOKEN_URL, jti="same"))
    assert first.status_code == 200
    again = await client_credentials(client, sign(EC, "svc", TOKEN_URL, alg="ES256", jti="same"))
    assert (await error_body(again, 401))["error"] == "invalid_client"


async def test_an_assertion_and_basic_together_are_refused(app, client):
    await secret_jwt_client(app)
    form = assertion_form(sign(SECRET, "hmac", TOKEN_URL, alg="HS256"))
    response = await client.post(
        TOKEN, form={"grant_type": "client_credentials", **form}, headers=basic("hmac", SECRET)
    )
    assert (await error_body(response, 400))["error"] == "invalid_request"


@pytest.mark.parametrize("how", ["basic", "post", "none"])
async def test_a_jwt_client_cannot_use_its_secret_or_nothing(app, client, how):
    await secret_jwt_client(app)
    await pkjwt_client(app)
    for client_id in ("hmac", "svc"):
        form = {"grant_type": "client_credentials", "client_id": client_id}
        headers = {}
        if how == "basic":
            form.pop("client_id")
            headers = basic(client_id, SECRET)
        elif how == "post":
            form["client_secret"] = SECRET
        response = await client.post(TOKEN, form=form, headers=headers)
        body = await error_body(response, 401)
        assert body["error"] == "invalid_client"
        assert "must authenticate with" in body["error_description"]


async def test_a_secret_client_cannot_use_an_assertion(app, client):
    await register_client(
        app, "basic-svc", auth_method="client_secret_basic", secret=SECRET,
        grant_types=("client_credentials",), scopes=("profile",),
    )  # fmt: skip
    response = await client_credentials(client, sign(SECRET, "basic-svc", TOKEN_URL, alg="HS256"))
    body = await error_body(response, 401)
    assert body["error_description"] == "This client must authenticate with client_secret_basic."


async def test_the_replay_record_lives_in_the_cache_slot(app, client):
    await pkjwt_client(app)
    assertion = sign(KEY, "svc", TOKEN_URL, jti="recorded")
    assert (await client_credentials(client, assertion)).status_code == 200
    cache = services_of(app).cache
    assert await cache.exists("jti:client:svc:recorded")
    assert isinstance(cache.memory, MemoryCache)


# --- concurrency --------------------------------------------------------------------------


class GatedCache:
    """The app's cache, whose first ``exists`` waits for ``gate``: that request is between
    its replay check and its record while the other one runs."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.arrived = trio.Event()
        self.gate = trio.Event()

    async def exists(self, key: str) -> bool:
        found = bool(await self.inner.exists(key))
        if not self.arrived.is_set():
            self.arrived.set()
            await self.gate.wait()
        return found

    async def set(self, key: str, value: str, ttl: float) -> None:
        await self.inner.set(key, value, ttl)


async def test_two_concurrent_requests_with_one_assertion_one_succeeds(app, client):
    await pkjwt_client(app)
    assertions = services_of(app).client_auth.assertions
    gated = GatedCache(assertions.cache)
    assertions.cache = gated
    assertion = sign(KEY, "svc", TOKEN_URL)
    statuses: list[int] = []

    async def request() -> None:
        statuses.append((await client_credentials(client, assertion)).status_code)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(request)
        await gated.arrived.wait()  # the first request is checking the jti...
        await request()  # ...while the second runs from start to end
        gated.gate.set()
    assert sorted(statuses) == [200, 401]


async def test_concurrent_uses_without_a_gate_let_exactly_one_through(app, client):
    await pkjwt_client(app)
    assertion = sign(KEY, "svc", TOKEN_URL)
    statuses: list[int] = []

    async def request() -> None:
        statuses.append((await client_credentials(client, assertion)).status_code)

    async with trio.open_nursery() as nursery:
        for _ in range(4):
            nursery.start_soon(request)
    assert sorted(statuses) == [200, 401, 401, 401]


# --- jwks_uri ---------------------------------------------------------------------------


async def test_a_jwks_uri_client_and_a_key_rotation(app, client):
    old, new = rsa_key("old"), rsa_key("new")
    with jwks_server(jwks_text(old)) as (handler, url):
        await pkjwt_client(app, jwks=None, jwks_uri=url)
        assertions = services_of(app).client_auth.assertions
        assertions.remote = RemoteJwks(assertions.cache, cooldown=0)
        assert (await client_credentials(client, sign(old, "svc", TOKEN_URL))).status_code == 200
        assert (await client_credentials(client, sign(old, "svc", TOKEN_URL))).status_code == 200
        assert handler.requests == 1  # cached
        handler.document = jwks_text(new)
        assert (await client_credentials(client, sign(new, "svc", TOKEN_URL))).status_code == 200
        assert handler.requests == 2  # the unknown kid made it fetch again, once
        handler.status = 500
        stale = await client_credentials(client, sign(rsa_key("newer"), "svc", TOKEN_URL))
        body = await error_body(stale, 401)
        assert "jwks_uri could not be used: HTTP 500" in body["error_description"]


async def test_an_unreachable_jwks_uri_is_invalid_client_not_a_500(app, client):
    with jwks_server("{}") as (_, url):
        pass  # the port is closed again
    await pkjwt_client(app, jwks=None, jwks_uri=url)
    body = await error_body(await client_credentials(client, sign(KEY, "svc", TOKEN_URL)), 401)
    assert body["error"] == "invalid_client"


@pytest.mark.redis
async def test_with_the_cache_on_redis_every_instance_sees_a_used_jti(tmp_path, redis_server):
    settings = steady_redis_settings(tmp_path, redis_server.url)
    async with create_app(settings).test_app() as one, create_app(settings).test_app() as two:
        await pkjwt_client(one)
        assert services_of(one).cache.backend_name == "redis"
        assertion = sign(KEY, "svc", TOKEN_URL)
        first = await client_credentials(one.test_client(), assertion)
        assert first.status_code == 200
        elsewhere = await client_credentials(two.test_client(), assertion)
        assert (await error_body(elsewhere, 401))["error_description"] == (
            "The client assertion was already used (jti)."
        )
