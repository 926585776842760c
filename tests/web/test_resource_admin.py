"""The resource registry (RFC 8707) through the admin API, its RFC 9728 metadata at
Authly, and the registry moving with `authly admin db export|import`."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from authly.resource_server import METADATA_PATH, metadata_url
from tests.conftest import ISSUER
from tests.test_db_transfer import export, load, of, sqlite_url
from tests.web.admin_client import ADMIN, SCOPES, AdminClient, session_handle
from tests.web.helpers import error_body, json_of, running_app

RESOURCES = f"{ADMIN}/resources"
API = "https://api.example.com/v1"


def one(identifier: str) -> str:
    return f"{RESOURCES}/{quote(identifier, safe='')}"


@pytest.fixture
async def admin(client: Any) -> AdminClient:
    admin = AdminClient(client, await session_handle(client))
    for name in ("api:read", "api:write"):
        body = {"name": name, "description": f"{name} on the API"}
        await json_of(await admin.post(SCOPES, json=body), 201)
    return admin


async def _error(response: Any, status: int, error: str, fragment: str = "") -> None:
    body = await error_body(response, status)
    assert body["error"] == error, body
    assert fragment in body["error_description"], body


async def test_create_list_show_update_delete(admin: AdminClient) -> None:
    body = {"resource": API, "name": "Reports API", "scopes": ["api:read", "api:write"]}
    response = await admin.post(RESOURCES, json=body)
    created = await json_of(response, 201)
    assert response.headers["Location"] == one(API)
    assert response.headers["Cache-Control"] == "no-store"
    assert set(created) == {
        "resource",
        "name",
        "scopes",
        "created_at",
        "updated_at",
        "metadata_url",
    }
    assert created["resource"] == API
    assert created["scopes"] == ["api:read", "api:write"]
    assert created["metadata_url"] == metadata_url(ISSUER, API)

    listed = await json_of(await admin.get(RESOURCES))
    assert [r["resource"] for r in listed["resources"]] == [API]
    assert await json_of(await admin.get(one(API))) == created

    changed = await json_of(await admin.patch(one(API), json={"scopes": ["api:read"]}))
    assert changed["scopes"] == ["api:read"]
    assert changed["name"] == "Reports API"
    renamed = await json_of(await admin.patch(one(API), json={"name": "Reports v1"}))
    assert renamed["name"] == "Reports v1"
    assert renamed["scopes"] == ["api:read"]

    assert (await admin.delete(one(API))).status_code == 204
    await _error(await admin.get(one(API)), 404, "not_found")
    await _error(await admin.delete(one(API)), 404, "not_found")
    assert (await json_of(await admin.get(RESOURCES)))["resources"] == []


async def test_identifier_with_trailing_slash_and_query(admin: AdminClient) -> None:
    for identifier in ("https://api.example.com/", "https://api.example.com/x?tenant=a"):
        body = {"resource": identifier, "name": "x"}
        created = await json_of(await admin.post(RESOURCES, json=body), 201)
        assert created["scopes"] == []
        assert (await json_of(await admin.get(one(identifier))))["resource"] == identifier


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"resource": "https://api.example.com/#x", "name": "x"}, "fragment"),
        ({"resource": "/v1", "name": "x"}, "absolute"),
        ({"resource": "http://api.example.com/", "name": "x"}, "loopback"),
        ({"resource": API, "name": ""}, "name"),
        ({"resource": API}, "Missing field: name"),
        ({"name": "x"}, "Missing field: resource"),
        ({"resource": API, "name": "x", "scopes": ["nope"]}, "Unknown scope"),
        ({"resource": API, "name": "x", "scopes": "api:read"}, "array"),
        ({"resource": API, "name": "x", "audience": "y"}, "Unknown or read-only"),
    ],
)
async def test_bad_values_are_invalid_request(
    admin: AdminClient, body: dict[str, Any], fragment: str
) -> None:
    await _error(await admin.post(RESOURCES, json=body), 400, "invalid_request", fragment)


async def test_duplicates_updates_and_scope_deletion(admin: AdminClient) -> None:
    await json_of(await admin.post(RESOURCES, json={"resource": API, "name": "x"}), 201)
    await _error(await admin.post(RESOURCES, json={"resource": API, "name": "y"}), 409, "conflict")
    other = {"resource": "https://other.example.com"}
    await _error(await admin.patch(one(API), json=other), 400, "invalid_request", "cannot change")
    await _error(
        await admin.patch(one(API), json={"created_at": 1}), 400, "invalid_request", "read-only"
    )
    await _error(
        await admin.patch(one("https://nope.example"), json={"name": "z"}), 404, "not_found"
    )
    # A scope a resource allows cannot be deleted until the resource lets go of it.
    await json_of(await admin.patch(one(API), json={"scopes": ["api:write"]}))
    await _error(await admin.delete(f"{SCOPES}/api:write"), 409, "conflict", API)
    await json_of(await admin.patch(one(API), json={"scopes": []}))
    assert (await admin.delete(f"{SCOPES}/api:write")).status_code == 204


async def test_needs_an_admin(client: Any, admin: AdminClient) -> None:
    anonymous = AdminClient(client, None)
    await _error(await anonymous.get(RESOURCES), 401, "invalid_token")
    outsider = AdminClient(client, admin.credential, address="203.0.113.9")
    await _error(
        await outsider.post(RESOURCES, json={"resource": API, "name": "x"}), 403, "access_denied"
    )


async def test_protected_resource_metadata(client: Any, admin: AdminClient) -> None:
    body = {"resource": API, "name": "Reports API", "scopes": ["api:read"]}
    await json_of(await admin.post(RESOURCES, json=body), 201)
    response = await client.get(METADATA_PATH, query_string={"resource": API})
    assert response.headers["Cache-Control"] == "public, max-age=300"
    assert await json_of(response) == {
        "resource": API,
        "authorization_servers": [ISSUER],
        "scopes_supported": ["api:read"],
        "bearer_methods_supported": ["header"],
        "resource_name": "Reports API",
    }
    # The URL the helper builds is the one served.
    url = metadata_url(ISSUER, API).removeprefix(ISSUER)
    assert (await json_of(await client.get(url)))["resource"] == API
    unknown = await client.get(METADATA_PATH, query_string={"resource": "https://nope.example"})
    await _error(unknown, 404, "not_found")
    await _error(await client.get(METADATA_PATH), 400, "invalid_request")
    twice = f"{METADATA_PATH}?resource={quote(API)}&resource={quote(API)}"
    await _error(await client.get(twice), 400, "invalid_request")
    await _error(
        await client.get(METADATA_PATH, query_string={"resource": "x" * 5000}), 404, "not_found"
    )


async def test_registry_moves_with_export_and_import(tmp_path: Path, settings: Any) -> None:
    source = sqlite_url(tmp_path, "source.db")
    async with running_app(settings.replace(database_url=source)) as app:
        admin = AdminClient(app.test_client(), await session_handle(app.test_client()))
        await json_of(await admin.post(SCOPES, json={"name": "api:read", "description": "r"}), 201)
        body = {"resource": API, "name": "Reports API", "scopes": ["api:read"]}
        await json_of(await admin.post(RESOURCES, json=body), 201)
    dump = await export(source)
    [row] = of(dump, "resources")
    assert row["identifier"] == API
    assert row["name"] == "Reports API"
    target = sqlite_url(tmp_path, "target.db")
    async with running_app(settings.replace(database_url=target, admin_password=None)):
        pass  # migrated, empty but for what migrations and a first start create
    result = await load(target, dump)
    assert result.inserted["resources"] == 1
    assert of(await export(target), "resources") == [row]
