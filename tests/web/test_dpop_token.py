"""DPoP at the token endpoint (RFC 9449 §5, §8, §10): bound access tokens, refresh
tokens bound for public clients, dpop_jkt, the per-client requirement, nonces, and
bad proofs answered as 400 JSON, never a 500."""

from __future__ import annotations

import random

import pytest
import trio
from werkzeug.datastructures import Headers

from authly.oauth import pkce
from authly.oauth.authorization import AuthorizationCodes, AuthorizationRequest
from tests.conftest import ISSUER, services_of
from tests.support.dpop import DPoPKey
from tests.web.admin_client import CLIENTS, AdminClient, admin_access_token
from tests.web.browser import answer as browser_answer
from tests.web.dpop_support import (
    PAR_URL,
    PASSWORD,
    REDIRECT,
    SECRET,
    TOKEN,
    TOKEN_URL,
    bound_tokens,
    claims_of,
    client_credentials,
    dpop_headers,
    password_grant,
    public_app,
    refresh,
    service,
)
from tests.web.helpers import basic, create_user, error_body, json_of, running_app
from tests.web.par_support import answer_via_par

VERIFIER = "v" * 43 + "-verifier._~"


async def alice(app) -> str:
    return (await create_user(app, "alice", PASSWORD)).id


# --- access tokens -----------------------------------------------------------------------


async def test_a_proof_binds_the_access_token(app, client):
    await service(app)
    key = DPoPKey()
    response = await client_credentials(client, key.proof("POST", TOKEN_URL))
    body = await json_of(response)
    assert body["token_type"] == "DPoP"
    assert claims_of(body["access_token"])["cnf"] == {"jkt": key.jkt}
    assert "DPoP-Nonce" not in response.headers  # nonces are off by default
    assert response.headers["Cache-Control"] == "no-store"


async def test_without_a_proof_tokens_stay_bearer_tokens(app, client):
    await service(app)
    body = await json_of(await client_credentials(client))
    assert body["token_type"] == "Bearer"
    assert "cnf" not in claims_of(body["access_token"])


async def test_a_bad_proof_is_400_invalid_dpop_proof(app, client):
    await service(app)
    key = DPoPKey()
    for proofs in (
        ["garbage"],
        [key.proof("GET", TOKEN_URL)],
        [key.proof("POST", PAR_URL)],
        [key.proof("POST", TOKEN_URL), key.proof("POST", TOKEN_URL)],
    ):
        response = await client_credentials(client, *proofs)
        assert (await error_body(response, 400))["error"] == "invalid_dpop_proof"
        assert response.headers["Cache-Control"] == "no-store"


async def test_htu_is_the_issuers_url_never_the_host_header(app, client):
    await service(app)
    key = DPoPKey()
    headers = Headers(basic("svc", SECRET))
    headers.add("Host", "evil.example")
    headers.add("DPoP", key.proof("POST", "http://evil.example" + TOKEN))
    form = {"grant_type": "client_credentials"}
    response = await client.post(TOKEN, form=form, headers=headers)
    assert (await error_body(response, 400))["error"] == "invalid_dpop_proof"
    headers.set("DPoP", key.proof("POST", TOKEN_URL))
    assert (await json_of(await client.post(TOKEN, form=form, headers=headers)))["token_type"]


async def test_a_replayed_proof_is_refused(app, client):
    await service(app)
    proof = DPoPKey().proof("POST", TOKEN_URL)
    await json_of(await client_credentials(client, proof))
    response = await client_credentials(client, proof)
    body = await error_body(response, 400)
    assert body == {
        "error": "invalid_dpop_proof",
        "error_description": "The DPoP proof was already used (jti).",
    }


async def test_of_concurrent_requests_with_one_proof_exactly_one_gets_a_token(app, client):
    await service(app)
    proof = DPoPKey().proof("POST", TOKEN_URL)
    statuses: list[int] = []

    async def send() -> None:
        statuses.append((await client_credentials(client, proof)).status_code)

    async with trio.open_nursery() as nursery:
        for _ in range(8):
            nursery.start_soon(send)
    assert sorted(statuses) == [200] + [400] * 7


async def test_fuzzed_dpop_headers_never_cause_a_500(app, client):
    await service(app)
    rng = random.Random(7)
    good = DPoPKey().proof("POST", TOKEN_URL)
    samples = ["", " ", "a.b", "..", "%00", "\u00e9t\u00e9", good.replace(".", "")]
    for _ in range(40):
        i = rng.randrange(len(good))
        samples.append(good[:i] + rng.choice("A-_.=/") + good[i + 1 :])
    for n, sample in enumerate(samples):
        response = await client_credentials(client, sample)
        if response.status_code == 200:
            # A changed character can leave the proof intact: the last character of a
            # base64url segment carries unused bits. Only a mutated sample may pass.
            assert n >= 7, sample
            continue
        assert response.status_code == 400, sample
        assert (await response.get_json())["error"] == "invalid_dpop_proof"


# --- refresh tokens ----------------------------------------------------------------------


@pytest.mark.both_stores
async def test_a_public_clients_refresh_token_is_bound_to_the_key(app, client):
    await public_app(app)
    await alice(app)
    key = DPoPKey()
    body = await bound_tokens(client, key)
    # Without a proof, or with another key: refused, and the token is not spent.
    response = await refresh(client, body["refresh_token"])
    assert "DPoP key" in (await error_body(response, 400))["error_description"]
    other = DPoPKey().proof("POST", TOKEN_URL)
    response = await refresh(client, body["refresh_token"], other)
    assert (await error_body(response, 400))["error"] == "invalid_grant"
    renewed = await json_of(
        await refresh(client, body["refresh_token"], key.proof("POST", TOKEN_URL))
    )
    assert renewed["token_type"] == "DPoP"
    assert claims_of(renewed["access_token"])["cnf"] == {"jkt": key.jkt}
    # The binding follows the family through the rotation.
    response = await refresh(client, renewed["refresh_token"])
    assert (await error_body(response, 400))["error"] == "invalid_grant"
    again = await refresh(client, renewed["refresh_token"], key.proof("POST", TOKEN_URL))
    assert (await json_of(again))["token_type"] == "DPoP"


async def test_a_refresh_token_bound_then_reused_without_the_key_revokes_nothing(app, client):
    await public_app(app)
    await alice(app)
    key = DPoPKey()
    body = await bound_tokens(client, key)
    await json_of(await refresh(client, body["refresh_token"], key.proof("POST", TOKEN_URL)))
    # A thief replaying the spent token without the key learns nothing and breaks nothing.
    response = await refresh(client, body["refresh_token"])
    assert "DPoP key" in (await error_body(response, 400))["error_description"]


async def test_an_unbound_public_refresh_token_stays_unbound(app, client):
    await public_app(app)
    await alice(app)
    body = await json_of(await password_grant(client))
    assert body["token_type"] == "Bearer"
    key = DPoPKey()
    renewed = await json_of(
        await refresh(client, body["refresh_token"], key.proof("POST", TOKEN_URL))
    )
    assert renewed["token_type"] == "DPoP"  # the access token is bound ...
    plain = await json_of(await refresh(client, renewed["refresh_token"]))  # ... not the family
    assert plain["token_type"] == "Bearer"


async def new_code(app, user_id: str, *, dpop_jkt: str = "", client_id: str = "svc") -> str:
    request = AuthorizationRequest(
        client_id=client_id,
        client_name=client_id,
        first_party=False,
        redirect_uri=REDIRECT,
        redirect_uri_given=REDIRECT,
        scope="profile",
        state="xyz",
        code_challenge=pkce.s256(VERIFIER),
        dpop_jkt=dpop_jkt,
    )
    return await AuthorizationCodes(services_of(app).db).create(request, user_id)


async def exchange(client, code: str, *proofs: str, client_id: str = "svc"):
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "code_verifier": VERIFIER,
        "redirect_uri": REDIRECT,
    }
    headers = dpop_headers(*proofs)
    if client_id == "svc":
        headers.update(basic("svc", SECRET))
    else:
        form["client_id"] = client_id
    return await client.post(TOKEN, form=form, headers=headers)


async def test_a_confidential_clients_refresh_token_is_not_bound(app, client):
    await service(app)
    user_id = await alice(app)
    key = DPoPKey()
    body = await json_of(
        await exchange(client, await new_code(app, user_id), key.proof("POST", TOKEN_URL))
    )
    assert body["token_type"] == "DPoP"
    headers = basic("svc", SECRET)
    form = {"grant_type": "refresh_token", "refresh_token": body["refresh_token"]}
    plain = await json_of(await client.post(TOKEN, form=form, headers=headers))
    assert plain["token_type"] == "Bearer"
    form["refresh_token"] = plain["refresh_token"]
    headers = dpop_headers(DPoPKey().proof("POST", TOKEN_URL), **basic("svc", SECRET))
    assert (await json_of(await client.post(TOKEN, form=form, headers=headers)))[
        "token_type"
    ] == "DPoP"


# --- dpop_jkt (§10) ----------------------------------------------------------------------


@pytest.mark.both_stores
async def test_a_code_requested_with_dpop_jkt_needs_that_key(app, client):
    await service(app)
    user_id = await alice(app)
    key = DPoPKey()
    for proofs in ((), (DPoPKey().proof("POST", TOKEN_URL),)):
        code = await new_code(app, user_id, dpop_jkt=key.jkt)
        response = await exchange(client, code, *proofs)
        assert "dpop_jkt" in (await error_body(response, 400))["error_description"]
    code = await new_code(app, user_id, dpop_jkt=key.jkt)
    body = await json_of(await exchange(client, code, key.proof("POST", TOKEN_URL)))
    assert claims_of(body["access_token"])["cnf"] == {"jkt": key.jkt}


async def test_dpop_jkt_through_the_authorization_endpoint(app, client, browser, alice):
    from tests.web.browser import auth_params, pkce_pair

    key = DPoPKey()
    verifier, challenge = pkce_pair()
    answer = await browser.code_for(auth_params(challenge, dpop_jkt=key.jkt))
    form = {
        "grant_type": "authorization_code",
        "client_id": "app",
        "code": answer["code"],
        "code_verifier": verifier,
        "redirect_uri": REDIRECT,
    }
    response = await client.post(TOKEN, form=form)
    assert (await error_body(response, 400))["error"] == "invalid_grant"
    answer = await browser.code_for(auth_params(challenge, dpop_jkt=key.jkt))
    form["code"] = answer["code"]
    headers = dpop_headers(key.proof("POST", TOKEN_URL))
    body = await json_of(await client.post(TOKEN, form=form, headers=headers))
    assert claims_of(body["access_token"])["cnf"] == {"jkt": key.jkt}
    # The browser client is public: its refresh token is bound too.
    response = await refresh(client, body["refresh_token"], client_id="app")
    assert (await error_body(response, 400))["error"] == "invalid_grant"
    proof = key.proof("POST", TOKEN_URL)
    assert await json_of(await refresh(client, body["refresh_token"], proof, client_id="app"))


async def test_a_malformed_dpop_jkt_is_redirected_as_invalid_request(browser, alice):
    from tests.web.browser import answer, auth_params, pkce_pair

    _, challenge = pkce_pair()
    response = await browser.authorize(auth_params(challenge, dpop_jkt="not-a-thumbprint"))
    sent = answer(response)
    assert sent["error"] == "invalid_request"
    assert "dpop_jkt" in sent["error_description"]


async def test_a_pushed_request_with_a_proof_binds_its_code(app, client, browser, alice):
    from tests.web.browser import auth_params, pkce_pair

    key = DPoPKey()
    verifier, challenge = pkce_pair()
    params = auth_params(challenge)
    wrong = await client.post(
        "/api/v1/oauth/par",
        form={**params, "dpop_jkt": DPoPKey().jkt},
        headers=dpop_headers(key.proof("POST", PAR_URL)),
    )
    assert (await error_body(wrong, 400))["error"] == "invalid_dpop_proof"
    pushed = await json_of(
        await client.post(
            "/api/v1/oauth/par", form=params, headers=dpop_headers(key.proof("POST", PAR_URL))
        ),
        201,
    )
    response = await answer_via_par(browser, pushed["request_uri"])
    answer = browser_answer(response)
    form = {
        "grant_type": "authorization_code",
        "client_id": "app",
        "code": answer["code"],
        "code_verifier": verifier,
        "redirect_uri": REDIRECT,
    }
    response = await client.post(
        TOKEN, form=form, headers=dpop_headers(DPoPKey().proof("POST", TOKEN_URL))
    )
    assert (await error_body(response, 400))["error"] == "invalid_grant"


# --- dpop_bound_access_tokens (§5.2) ---------------------------------------------------


@pytest.mark.both_stores
async def test_a_client_registered_with_dpop_bound_access_tokens_needs_a_proof(app, client):
    await service(app, dpop_bound_access_tokens=True)
    response = await client_credentials(client)
    body = await error_body(response, 400)
    assert body["error"] == "invalid_dpop_proof"
    assert "dpop_bound_access_tokens" in body["error_description"]
    proof = DPoPKey().proof("POST", TOKEN_URL)
    assert (await json_of(await client_credentials(client, proof)))["token_type"] == "DPoP"


async def test_the_admin_api_sets_dpop_bound_access_tokens(client):
    admin = AdminClient(client, await admin_access_token(client))
    body = {
        "name": "Bound service",
        "client_type": "confidential",
        "grant_types": ["client_credentials"],
        "scopes": ["profile"],
        "dpop_bound_access_tokens": True,
    }
    created = await json_of(await admin.post(CLIENTS, json=body), 201)
    assert created["dpop_bound_access_tokens"] is True
    path = f"{CLIENTS}/{created['client_id']}"
    updated = await json_of(await admin.patch(path, json={"dpop_bound_access_tokens": False}))
    assert updated["dpop_bound_access_tokens"] is False
    response = await admin.patch(path, json={"dpop_bound_access_tokens": "yes"})
    assert "dpop_bound_access_tokens" in (await error_body(response, 400))["error_description"]
    assert (await json_of(await admin.get(path)))["dpop_bound_access_tokens"] is False


# --- nonces (§8) -------------------------------------------------------------------------


async def test_with_nonces_a_proof_without_one_gets_use_dpop_nonce(settings, tmp_path):
    async with running_app(settings.replace(dpop_nonce=True)) as app:
        client = app.test_client()
        await service(app)
        key = DPoPKey()
        response = await client_credentials(client, key.proof("POST", TOKEN_URL))
        assert (await error_body(response, 400))["error"] == "use_dpop_nonce"
        nonce = response.headers["DPoP-Nonce"]
        proof = key.proof("POST", TOKEN_URL, nonce=nonce)
        answer = await client_credentials(client, proof)
        assert (await json_of(answer))["token_type"] == "DPoP"
        assert len(answer.headers["DPoP-Nonce"]) == 22  # the current one (a bucket may turn)
        wrong = await client_credentials(client, key.proof("POST", TOKEN_URL, nonce="x" * 22))
        assert (await error_body(wrong, 400))["error"] == "use_dpop_nonce"
        plain = await client_credentials(client)  # no proof, no nonce needed
        assert (await json_of(plain))["token_type"] == "Bearer"
        assert "DPoP-Nonce" not in plain.headers


@pytest.mark.both_stores
async def test_instances_sharing_a_store_share_nonces(settings):
    nonce_settings = settings.replace(dpop_nonce=True)
    async with running_app(nonce_settings) as first, running_app(nonce_settings) as second:
        await service(first)
        response = await client_credentials(first.test_client(), DPoPKey().proof("POST", TOKEN_URL))
        nonce = response.headers["DPoP-Nonce"]
        proof = DPoPKey().proof("POST", TOKEN_URL, nonce=nonce)
        answer = await client_credentials(second.test_client(), proof)
        assert (await json_of(answer))["token_type"] == "DPoP"


# --- discovery ---------------------------------------------------------------------------


async def test_both_metadata_documents_list_the_dpop_algorithms(client):
    for path in ("/.well-known/oauth-authorization-server", "/.well-known/openid-configuration"):
        document = await json_of(await client.get(path))
        assert document["dpop_signing_alg_values_supported"] == ["ES256", "RS256", "PS256", "EdDSA"]
        assert document["issuer"] == ISSUER
