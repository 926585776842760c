"""/health, /metrics and /.well-known/jwks.json (DESIGN §7)."""

from __future__ import annotations

import pytest
from joserfc import jwt
from joserfc.errors import BadSignatureError
from joserfc.jwk import JWKRegistry, KeySet, RSAKey
from prometheus_client.parser import text_string_to_metric_families

from authly import __version__
from authly.config import RedisSettings
from authly.redis.url import parse_redis_url
from tests.conftest import ISSUER, login, services_of
from tests.web.helpers import LOGIN, ME, json_of, running_app

PRIVATE_MEMBERS = {"d", "p", "q", "dp", "dq", "qi", "oth", "k"}

DESIGN_METRICS = {
    # name as exposed -> Prometheus type
    "authly_redis_connections_active": "gauge",
    "authly_redis_operations_total": "counter",
    "authly_redis_cache_hits_total": "counter",
    "authly_redis_cache_misses_total": "counter",
    "authly_redis_up": "gauge",
    "authly_backend_active": "gauge",
    "authly_backend_switches_total": "counter",
    "authly_rate_limit_decisions_total": "counter",
    "authly_http_requests_total": "counter",
    "authly_http_request_duration_seconds": "histogram",
}


# --- /health ------------------------------------------------------------------------------


@pytest.mark.both_stores
async def test_health_body_is_exactly_the_documented_shape(client, settings):
    response = await client.get("/health")
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    in_use = (await response.get_json())["database"]["pool"]["in_use"]
    assert in_use in (0, 1)  # the health probe's own connection may still be returning
    url = settings.database_url
    backend = "postgresql" if url.startswith("postgresql:") else "sqlite"
    assert await response.get_json() == {
        "status": "healthy",
        "version": __version__,
        "database": {
            "available": True,
            "backend": backend,
            "url": url.replace("authly-test-pw", "***"),
            "pool": {"size": 10 if backend == "postgresql" else 1, "in_use": in_use},
        },
        "redis": {
            "available": False,
            "url": None,
            "features": {"rate_limit": False, "cache": False, "session": False},
            "backends": {"rate_limit": "memory", "cache": "memory", "session": "database"},
            "pinned": [],
            "last_switch": None,
            "last_error": None,
        },
    }


async def test_health_masks_a_configured_redis_url(settings_factory):
    # URL set but no feature flag on: nothing connects, but /health shows the URL.
    redis = RedisSettings(url=parse_redis_url("redis://:hunter2-secret@127.0.0.1:1/3"))
    async with running_app(settings_factory(redis=redis)) as test_app:
        response = await test_app.test_client().get("/health")
        text = await response.get_data(as_text=True)
        assert "hunter2" not in text
        body = await json_of(response)
        assert body["status"] == "healthy"
        assert body["redis"]["url"] == "redis://:***@127.0.0.1:1/3"
        assert body["redis"]["features"] == {"rate_limit": False, "cache": False, "session": False}
        assert body["redis"]["backends"] == {
            "rate_limit": "memory",
            "cache": "memory",
            "session": "database",  # sessions not on Redis live in the store
        }


async def test_health_is_503_when_the_store_is_closed(app, client):
    assert (await client.get("/health")).status_code == 200
    services_of(app).db.close()
    response = await client.get("/health")
    assert response.status_code == 503
    body = await response.get_json()
    assert body["database"]["available"] is False
    assert body["database"]["backend"] == "sqlite"
    assert body["status"] != "healthy"
    assert body["version"] == __version__
    assert response.headers["Cache-Control"] == "no-store"


async def test_requests_needing_the_store_fail_cleanly_when_it_is_closed(app, client):
    services_of(app).db.close()
    response = await login(client)
    assert response.status_code == 503
    body = await response.get_json()
    assert body["error"] == "temporarily_unavailable"
    assert body["error_description"]


# --- JWKS ---------------------------------------------------------------------------------


async def _jwks(client) -> dict:
    response = await client.get("/.well-known/jwks.json")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    return await response.get_json()


def _rsa(document: dict) -> dict:
    (key,) = [k for k in document["keys"] if k["alg"] == "RS256"]
    return key


async def test_jwks_has_one_public_signing_key_per_algorithm(client):
    document = await _jwks(client)
    assert set(document) == {"keys"}
    by_alg = {k["alg"]: k for k in document["keys"]}
    assert len(document["keys"]) == len(by_alg) == 3
    rsa, ec, okp = by_alg["RS256"], by_alg["ES256"], by_alg["EdDSA"]
    assert (rsa["kty"], rsa["e"]) == ("RSA", "AQAB")
    assert rsa["n"]
    assert (ec["kty"], ec["crv"]) == ("EC", "P-256")
    assert ec["x"]
    assert ec["y"]
    assert (okp["kty"], okp["crv"]) == ("OKP", "Ed25519")
    assert okp["x"]
    for key in document["keys"]:
        assert key["use"] == "sig"
        assert key["kid"]
        assert not PRIVATE_MEMBERS & set(key), sorted(PRIVATE_MEMBERS & set(key))


async def test_jwks_is_publicly_cacheable_for_the_cache_ttl(app, client):
    response = await client.get("/.well-known/jwks.json")
    ttl = int(services_of(app).jwks.ttl)
    assert ttl == 300
    assert response.headers["Cache-Control"] == f"public, max-age={ttl}"


async def test_jwks_kid_is_the_rfc7638_thumbprint(client):
    for key in (await _jwks(client))["keys"]:
        assert JWKRegistry.import_key(key).thumbprint() == key["kid"]


async def test_login_token_verifies_against_the_published_jwks(client):
    key_set = KeySet.import_key_set(await _jwks(client))
    tokens = await json_of(await login(client))
    token = jwt.decode(tokens["access_token"], key_set, algorithms=["RS256"])
    assert token.header["kid"] == _rsa(await _jwks(client))["kid"]
    assert token.header["alg"] == "RS256"
    assert token.claims["iss"] == ISSUER
    assert token.claims["aud"] == ISSUER
    profile = await json_of(
        await client.get(ME, headers={"Authorization": f"Bearer {tokens['access_token']}"})
    )
    assert token.claims["sub"] == profile["id"]


async def test_jwks_does_not_verify_a_token_from_another_key(client):
    document = await _jwks(client)
    key_set = KeySet.import_key_set(document)
    other = RSAKey.generate_key(2048, private=True)
    header = {"alg": "RS256", "kid": _rsa(document)["kid"]}
    forged = jwt.encode(header, {"sub": "x"}, other, algorithms=["RS256"])
    with pytest.raises(BadSignatureError):
        jwt.decode(forged, key_set, algorithms=["RS256"])


async def test_signing_key_survives_a_restart(settings_factory):
    settings = settings_factory()
    async with running_app(settings) as first:
        before = await _jwks(first.test_client())
        tokens = await json_of(await login(first.test_client()))
    async with running_app(settings) as second:
        client = second.test_client()
        assert await _jwks(client) == before
        headers = {"Authorization": f"Bearer {tokens['access_token']}"}
        assert (await client.get(ME, headers=headers)).status_code == 200


# --- /metrics -----------------------------------------------------------------------------


async def _metrics_text(client) -> str:
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    return await response.get_data(as_text=True)


def _samples(text: str, name: str) -> list:
    return [
        sample
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name
    ]


def _value(text: str, name: str, **labels: str) -> float:
    matches = [s.value for s in _samples(text, name) if s.labels == labels]
    assert len(matches) == 1, (name, labels, _samples(text, name))
    return matches[0]


async def test_metrics_exposition_parses(client):
    text = await _metrics_text(client)
    assert list(text_string_to_metric_families(text))


@pytest.mark.parametrize(("name", "kind"), sorted(DESIGN_METRICS.items()))
async def test_design_metrics_are_declared(client, name, kind):
    text = await _metrics_text(client)
    assert f"# TYPE {name} {kind}\n" in text
    assert f"# HELP {name} " in text


async def test_requests_are_counted_by_url_rule(client):
    assert (await login(client)).status_code == 200
    assert (await login(client, password="wrong-password")).status_code == 401
    text = await _metrics_text(client)
    route = {"route": LOGIN, "method": "POST"}
    assert _value(text, "authly_http_requests_total", status="200", **route) == 1
    assert _value(text, "authly_http_requests_total", status="401", **route) == 1
    assert f'route="{LOGIN}"' in text


async def test_latency_histogram_by_route(client):
    await login(client)
    await login(client)
    text = await _metrics_text(client)
    labels = {"route": LOGIN, "method": "POST"}
    assert _value(text, "authly_http_request_duration_seconds_count", **labels) == 2
    assert _value(text, "authly_http_request_duration_seconds_sum", **labels) > 0
    assert _value(text, "authly_http_request_duration_seconds_bucket", le="+Inf", **labels) == 2


async def test_unknown_paths_never_become_labels(client):
    for i in range(3):
        assert (await client.get(f"/nope/{i}23")).status_code == 404
    assert (await client.get("/nope/123")).status_code == 404
    text = await _metrics_text(client)
    assert "/nope/123" not in text
    assert "/nope" not in text
    assert (
        _value(text, "authly_http_requests_total", route="<unmatched>", method="GET", status="404")
        == 4
    )


async def test_unknown_methods_do_not_become_labels(client):
    await client.open(LOGIN, method="BREW")
    text = await _metrics_text(client)
    assert "BREW" not in text


async def test_backends_are_reported_as_memory_and_sessions_as_database(client):
    text = await _metrics_text(client)
    for feature in ("rate_limit", "cache", "session"):
        backend = "database" if feature == "session" else "memory"
        for name in ("memory", "redis", "database"):
            expected = 1 if name == backend else 0
            assert _value(text, "authly_backend_active", feature=feature, backend=name) == expected
        for to in ("memory", "redis", "database"):
            assert _value(text, "authly_backend_switches_total", feature=feature, to=to) == 0
    assert _value(text, "authly_redis_up") == 0


async def test_rate_limit_decisions_are_counted(client, settings):
    for _ in range(settings.login_rate_limit + 1):
        await login(client, password="wrong-password")
    text = await _metrics_text(client)
    assert _value(text, "authly_rate_limit_decisions_total", result="denied") == 1
    assert _value(text, "authly_rate_limit_decisions_total", result="allowed") >= (
        settings.login_rate_limit
    )


async def test_metrics_are_per_app(settings_factory, tmp_path):
    async with running_app(settings_factory()) as first:
        await login(first.test_client())
        async with running_app(
            settings_factory(database_url=f"sqlite:///{tmp_path / 'other.db'}")
        ) as second:
            text = await _metrics_text(second.test_client())
            assert not _samples(text, "authly_http_requests_total") or all(
                s.labels["route"] != LOGIN for s in _samples(text, "authly_http_requests_total")
            )
