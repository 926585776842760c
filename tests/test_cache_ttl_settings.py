"""AUTHLY_CACHE_TTL_*: parsed and bounded, and each one reaches the cache entry (and the
Cache-Control max-age) of the document it names (issue 11, item 8)."""

from __future__ import annotations

from typing import Any

import pytest
import trio

from authly.config import Settings
from authly.errors import ConfigError
from authly.oauth.metadata import METADATA_KEY, METADATA_TTL, OPENID_KEY
from authly.tokens.jwks import JWKS_KEY, JWKS_TTL
from authly.tokens.revocation import NEGATIVE_TTL
from authly.users.profiles import PROFILE_TTL
from tests.conftest import login, services_of
from tests.web.helpers import ME, running_app

TTL_SETTINGS = {
    "AUTHLY_CACHE_TTL_JWKS": ("cache_ttl_jwks", JWKS_TTL),
    "AUTHLY_CACHE_TTL_METADATA": ("cache_ttl_metadata", METADATA_TTL),
    "AUTHLY_CACHE_TTL_DISCOVERY": ("cache_ttl_discovery", METADATA_TTL),
    "AUTHLY_CACHE_TTL_PROFILE": ("cache_ttl_profile", PROFILE_TTL),
    "AUTHLY_CACHE_TTL_REVOCATION": ("cache_ttl_revocation", NEGATIVE_TTL),
}


def test_defaults_are_the_ttls_used_before_the_settings():
    settings = Settings.from_env({})
    for field, before in TTL_SETTINGS.values():
        assert getattr(settings, field) == before, field
    assert (JWKS_TTL, METADATA_TTL, PROFILE_TTL, NEGATIVE_TTL) == (300, 300, 60, 30)


@pytest.mark.parametrize("variable", sorted(TTL_SETTINGS))
def test_a_ttl_is_read(variable: str):
    field, _ = TTL_SETTINGS[variable]
    assert getattr(Settings.from_env({variable: " 17 "}), field) == 17


@pytest.mark.parametrize("variable", sorted(TTL_SETTINGS))
@pytest.mark.parametrize("value", ["0", "-5", "abc", "1.5", "86401"])
def test_a_bad_ttl_names_the_variable(variable: str, value: str):
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({variable: value})
    assert caught.value.variable == variable
    assert "\n" not in str(caught.value)


def test_the_not_revoked_ttl_is_at_most_an_hour():
    assert Settings.from_env({"AUTHLY_CACHE_TTL_REVOCATION": "3600"}).cache_ttl_revocation == 3600
    with pytest.raises(ConfigError, match="AUTHLY_CACHE_TTL_REVOCATION: must be between 1 and"):
        Settings.from_env({"AUTHLY_CACHE_TTL_REVOCATION": "3601"})


# --- each TTL reaches its cache entry ------------------------------------------------------


def _record_sets(app: Any) -> dict[str, float]:
    """Wrap the (memory) cache's ``set``: key -> the TTL it was last given."""
    memory = services_of(app).cache.memory
    original = memory.set
    given: dict[str, float] = {}

    async def set(key: str, value: str, ttl: float) -> None:
        given[key] = ttl
        await original(key, value, ttl)

    memory.set = set  # type: ignore[method-assign]
    return given


async def test_each_ttl_reaches_its_document_and_its_max_age(settings: Settings):
    settings = settings.replace(
        cache_ttl_jwks=11,
        cache_ttl_metadata=12,
        cache_ttl_discovery=13,
        cache_ttl_profile=14,
        cache_ttl_revocation=15,
    )
    async with running_app(settings) as app:
        given = _record_sets(app)
        client = app.test_client()
        for path, key, ttl in [
            ("/.well-known/jwks.json", JWKS_KEY, 11),
            ("/.well-known/oauth-authorization-server", METADATA_KEY, 12),
            ("/.well-known/openid-configuration", OPENID_KEY, 13),
        ]:
            response = await client.get(path)
            assert response.status_code == 200
            assert response.headers["Cache-Control"] == f"public, max-age={ttl}", path
            assert given[key] == ttl, key

        response = await login(client)
        assert response.status_code == 200
        token = (await response.get_json())["access_token"]
        # The profile is cached on first use, and the token's "not revoked" answer.
        for key in [k for k in given if k.startswith(("user:", "revoked:"))]:
            del given[key]
        response = await client.get(ME, headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 200
        profile = [ttl for key, ttl in given.items() if key.startswith("user:")]
        revoked = [ttl for key, ttl in given.items() if key.startswith("revoked:")]
        assert revoked == [15]
        assert profile in ([], [14])  # cached at login already, or now
        user = services_of(app).profiles
        await user.invalidate((await response.get_json())["id"])
        given.clear()
        await client.get(ME, headers={"Authorization": f"Bearer {token}"})
        assert [ttl for key, ttl in given.items() if key.startswith("user:")] == [14]


async def test_a_short_ttl_expires_the_cached_document(settings: Settings):
    async with running_app(settings.replace(cache_ttl_metadata=1)) as app:
        cache = services_of(app).cache
        client = app.test_client()
        assert (await client.get("/.well-known/oauth-authorization-server")).status_code == 200
        assert await cache.exists(METADATA_KEY)
        await trio.sleep(1.2)
        assert not await cache.exists(METADATA_KEY)
