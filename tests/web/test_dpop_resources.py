"""DPoP-bound access tokens at Authly's protected resources (RFC 9449 §6, §7):
userinfo with the DPoP scheme and its challenges, bearer presentation refused, and
introspection's ``cnf``."""

from __future__ import annotations

import random

import pytest

from tests.support.dpop import DPoPKey
from tests.web.dpop_support import (
    INTROSPECT,
    PASSWORD,
    SECRET,
    TOKEN_URL,
    USERINFO,
    USERINFO_URL,
    bound_tokens,
    client_credentials,
    dpop_headers,
    password_grant,
    public_app,
    service,
)
from tests.web.helpers import FORM, basic, create_user, error_body, json_of, running_app

ALGS = 'algs="ES256 RS256 PS256 EdDSA"'


@pytest.fixture
async def alice_id(app):
    await public_app(app)
    return (await create_user(app, "alice", PASSWORD)).id


def dpop_auth(token: str, *proofs: str) -> object:
    return dpop_headers(*proofs, Authorization=f"DPoP {token}")


async def test_userinfo_takes_a_bound_token_with_the_dpop_scheme(client, alice_id):
    key = DPoPKey()
    token = (await bound_tokens(client, key))["access_token"]
    proof = key.proof("GET", USERINFO_URL, access_token=token)
    response = await client.get(USERINFO, headers=dpop_auth(token, proof))
    assert (await json_of(response))["sub"] == alice_id
    assert "DPoP-Nonce" not in response.headers
    proof = key.proof("POST", USERINFO_URL, access_token=token)
    assert (await json_of(await client.post(USERINFO, headers=dpop_auth(token, proof))))["sub"]


async def test_a_bound_token_sent_as_a_bearer_token_is_refused(client, alice_id):
    token = (await bound_tokens(client, DPoPKey()))["access_token"]
    response = await client.get(USERINFO, headers={"Authorization": f"Bearer {token}"})
    assert (await error_body(response, 401))["error"] == "invalid_token"
    challenge = response.headers["WWW-Authenticate"]
    assert challenge.startswith('DPoP error="invalid_token"')
    assert ALGS in challenge
    # In a POST form too, and at Authly's own API.
    form = await client.post(USERINFO, form={"access_token": token})
    assert (await error_body(form, 401))["error"] == "invalid_token"
    me = await client.get("/api/v1/users/me", headers={"Authorization": f"Bearer {token}"})
    assert "DPoP-bound" in (await error_body(me, 401))["error_description"]


@pytest.mark.parametrize("case", ["no proof", "no ath", "wrong ath", "wrong htu", "wrong htm"])
async def test_userinfo_refuses_bad_proofs_with_a_dpop_challenge(client, alice_id, case):
    key = DPoPKey()
    token = (await bound_tokens(client, key))["access_token"]
    proofs = {
        "no proof": [],
        "no ath": [key.proof("GET", USERINFO_URL)],
        "wrong ath": [key.proof("GET", USERINFO_URL, access_token="another")],
        "wrong htu": [key.proof("GET", TOKEN_URL, access_token=token)],
        "wrong htm": [key.proof("POST", USERINFO_URL, access_token=token)],
    }[case]
    response = await client.get(USERINFO, headers=dpop_auth(token, *proofs))
    assert (await error_body(response, 401))["error"] == "invalid_dpop_proof"
    challenge = response.headers["WWW-Authenticate"]
    assert challenge.startswith('DPoP error="invalid_dpop_proof", error_description="')
    assert challenge.endswith(ALGS)


async def test_the_proof_key_must_be_the_tokens(client, alice_id):
    token = (await bound_tokens(client, DPoPKey()))["access_token"]
    other = DPoPKey()
    proof = other.proof("GET", USERINFO_URL, access_token=token)
    response = await client.get(USERINFO, headers=dpop_auth(token, proof))
    assert (await error_body(response, 401))["error"] == "invalid_token"
    assert response.headers["WWW-Authenticate"].startswith('DPoP error="invalid_token"')


async def test_a_bearer_token_with_the_dpop_scheme_is_refused(client, alice_id):
    token = (await json_of(await password_grant(client)))["access_token"]
    key = DPoPKey()
    proof = key.proof("GET", USERINFO_URL, access_token=token)
    response = await client.get(USERINFO, headers=dpop_auth(token, proof))
    assert "not bound" in (await error_body(response, 401))["error_description"]
    # ... while the same token as a bearer token is fine.
    plain = await client.get(USERINFO, headers={"Authorization": f"Bearer {token}"})
    assert (await json_of(plain))["sub"] == alice_id


async def test_a_replayed_resource_proof_is_refused(client, alice_id):
    key = DPoPKey()
    token = (await bound_tokens(client, key))["access_token"]
    headers = dpop_auth(token, key.proof("GET", USERINFO_URL, access_token=token))
    await json_of(await client.get(USERINFO, headers=headers))
    response = await client.get(USERINFO, headers=headers)
    assert "already used" in (await error_body(response, 401))["error_description"]


async def test_insufficient_scope_gets_a_dpop_challenge(client, alice_id):
    key = DPoPKey()
    token = (await bound_tokens(client, key, scope="profile"))["access_token"]
    proof = key.proof("GET", USERINFO_URL, access_token=token)
    response = await client.get(USERINFO, headers=dpop_auth(token, proof))
    assert (await error_body(response, 403))["error"] == "insufficient_scope"
    challenge = response.headers["WWW-Authenticate"]
    assert challenge.startswith('DPoP error="insufficient_scope"')
    assert 'scope="openid"' in challenge


@pytest.mark.parametrize("header", ["DPoP", "DPoP   ", "dpop "])
async def test_an_empty_dpop_credential_is_invalid_token(client, alice_id, header):
    response = await client.get(USERINFO, headers={"Authorization": header})
    assert (await error_body(response, 401))["error"] == "invalid_token"


async def test_both_a_dpop_header_credential_and_a_form_token_is_invalid_request(client, alice_id):
    key = DPoPKey()
    token = (await bound_tokens(client, key))["access_token"]
    headers = dpop_auth(token, key.proof("POST", USERINFO_URL, access_token=token))
    headers.add("Content-Type", FORM["Content-Type"])
    response = await client.post(USERINFO, data=f"access_token={token}", headers=headers)
    assert (await error_body(response, 400))["error"] == "invalid_request"


async def test_nonces_at_userinfo(settings):
    async with running_app(settings.replace(dpop_nonce=True)) as app:
        client = app.test_client()
        await public_app(app)
        await create_user(app, "alice", PASSWORD)
        key = DPoPKey()
        first = await password_grant(client, key.proof("POST", TOKEN_URL))
        nonce = first.headers["DPoP-Nonce"]
        token_proof = key.proof("POST", TOKEN_URL, nonce=nonce)
        token = (await json_of(await password_grant(client, token_proof)))["access_token"]
        proof = key.proof("GET", USERINFO_URL, access_token=token)
        response = await client.get(USERINFO, headers=dpop_auth(token, proof))
        assert (await error_body(response, 401))["error"] == "use_dpop_nonce"
        assert response.headers["WWW-Authenticate"].startswith('DPoP error="use_dpop_nonce"')
        nonce = response.headers["DPoP-Nonce"]
        proof = key.proof("GET", USERINFO_URL, access_token=token, nonce=nonce)
        answer = await client.get(USERINFO, headers=dpop_auth(token, proof))
        assert (await json_of(answer))["sub"]
        assert len(answer.headers["DPoP-Nonce"]) == 22  # the current one (a bucket may turn)


async def test_introspection_describes_the_binding(app, client, alice_id):
    await service(app)
    key = DPoPKey()
    bound = (await bound_tokens(client, key))["access_token"]
    plain = (await json_of(await client_credentials(client)))["access_token"]
    auth = basic("svc", SECRET)
    body = await json_of(await client.post(INTROSPECT, form={"token": bound}, headers=auth))
    assert body["active"] is True
    assert body["token_type"] == "DPoP"
    assert body["cnf"] == {"jkt": key.jkt}
    body = await json_of(await client.post(INTROSPECT, form={"token": plain}, headers=auth))
    assert body["token_type"] == "Bearer"
    assert "cnf" not in body


async def test_fuzzed_dpop_credentials_never_cause_a_500(client, alice_id):
    rng = random.Random(9449)
    key = DPoPKey()
    token = (await bound_tokens(client, key))["access_token"]
    good = key.proof("GET", USERINFO_URL, access_token=token)
    for _ in range(40):
        i = rng.randrange(len(good))
        proof = good[:i] + rng.choice("A-_.=/ ") + good[i + 1 :]
        credential = token[: rng.randrange(len(token))] if rng.random() < 0.3 else token
        response = await client.get(USERINFO, headers=dpop_auth(credential, proof))
        if response.status_code == 200:
            # A changed character can leave the proof intact (the last character of a
            # base64url segment carries unused bits); the token must then be whole.
            assert credential == token, proof
            continue
        assert response.status_code == 401, proof
        assert response.headers["WWW-Authenticate"].startswith("DPoP error="), response.headers[
            "WWW-Authenticate"
        ]
    for proof in ("", "a.b.c", good + good):
        pushed = await client.post(
            "/api/v1/oauth/par",
            form={"client_id": "native", "response_type": "code"},
            headers=dpop_headers(proof),
        )
        assert pushed.status_code == 400, proof
