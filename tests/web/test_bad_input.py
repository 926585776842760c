"""Bad input never yields a 5xx or a non-JSON answer (DESIGN §7).

Every response here must be 4xx JSON with ``error`` and ``error_description``.
"""

from __future__ import annotations

import pytest

from tests.conftest import ADMIN_PASSWORD, login
from tests.web.helpers import FORM, JSON, LOGIN, LOGOUT, TOKEN, error_body, running_app

JSON_ENDPOINTS = [LOGIN, LOGOUT]
ALL_BODY_ENDPOINTS = [LOGIN, LOGOUT, TOKEN]
VALID_JSON = {
    LOGIN: b'{"username": "admin", "password": "admin-pass-123"}',
    LOGOUT: b'{"refresh_token": "whatever"}',
}


async def _bad(response, status: int, error: str | None = None) -> dict:
    assert response.status_code < 500
    body = await error_body(response, status)
    if error is not None:
        assert body["error"] == error
    return body


# --- JSON endpoints -----------------------------------------------------------------------


@pytest.mark.parametrize("path", JSON_ENDPOINTS)
@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"{", id="truncated"),
        pytest.param(b'{"username": "admin",}', id="trailing-comma"),
        pytest.param(b"{'username': 'admin'}", id="single-quotes"),
        pytest.param(b"username=admin", id="form-text"),
        pytest.param(b"\x00\x01\x02", id="binary"),
        pytest.param(b'\xef\xbb\xbf{"username": "admin"}', id="utf8-bom"),
        pytest.param(b'{"a": 1} {"b": 2}', id="two-documents"),
    ],
)
async def test_malformed_json_is_400(client, path, raw):
    await _bad(await client.post(path, data=raw, headers=JSON), 400, "invalid_request")


@pytest.mark.parametrize("path", JSON_ENDPOINTS)
@pytest.mark.parametrize(
    "raw",
    [b"[]", b'["admin", "admin-pass-123"]', b'"admin"', b"42", b"null", b"true", b"1.5e3"],
)
async def test_json_that_is_not_an_object_is_400(client, path, raw):
    body = await _bad(await client.post(path, data=raw, headers=JSON), 400, "invalid_request")
    assert "object" in body["error_description"]


@pytest.mark.parametrize("path", JSON_ENDPOINTS)
@pytest.mark.parametrize(
    "content_type",
    [
        None,
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=xyz",
        "application/jsonx",
        "text/json",
    ],
)
async def test_json_endpoint_wrong_content_type_is_415(client, path, content_type):
    headers = {} if content_type is None else {"Content-Type": content_type}
    response = await client.post(path, data=VALID_JSON[path], headers=headers)
    await _bad(response, 415, "invalid_request")


@pytest.mark.parametrize("path", JSON_ENDPOINTS)
@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(b'{"username": "\xff\xfe", "password": "x"}', id="ff-fe"),
        pytest.param(b'{"username": "adm\xc3", "password": "x"}', id="truncated-sequence"),
        pytest.param(b'{"refresh_token": "\xed\xa0\x80"}', id="encoded-surrogate"),
        pytest.param(b'{"username": "\xc0\xaf", "password": "x"}', id="overlong"),
    ],
)
async def test_invalid_utf8_in_json_is_400(client, path, raw):
    await _bad(await client.post(path, data=raw, headers=JSON), 400, "invalid_request")


@pytest.mark.parametrize("path", JSON_ENDPOINTS)
async def test_nan_and_infinity_are_not_strings(client, path):
    raw = b'{"username": NaN, "password": Infinity, "refresh_token": -Infinity}'
    await _bad(await client.post(path, data=raw, headers=JSON), 400, "invalid_request")


@pytest.mark.parametrize("path", JSON_ENDPOINTS)
async def test_deeply_nested_json_is_400(client, path):
    raw = b"[" * 30_000 + b"]" * 30_000  # under the 64 KiB body limit
    await _bad(await client.post(path, data=raw, headers=JSON), 400, "invalid_request")


@pytest.mark.parametrize(
    ("path", "raw"),
    [
        pytest.param(LOGIN, b'{"username": "\\ud800", "password": "x"}', id="login-username"),
        pytest.param(LOGIN, b'{"username": "admin", "password": "\\udfff"}', id="login-password"),
        pytest.param(LOGOUT, b'{"refresh_token": "abc\\ud83d"}', id="logout-token"),
    ],
)
async def test_lone_surrogate_escapes_are_400(client, path, raw):
    await _bad(await client.post(path, data=raw, headers=JSON), 400, "invalid_request")


async def test_escaped_non_ascii_in_json_is_fine(client):
    raw = b'{"username": "\\u00e9l\\u00e8ve", "password": "\\ud83d\\ude00"}'  # valid pair
    response = await client.post(LOGIN, data=raw, headers=JSON)
    await _bad(response, 401, "invalid_grant")


# --- form endpoint ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(b"grant_type=password&username=\xff&password=x", id="raw-ff"),
        pytest.param(b"grant_type=password&username=%ff&password=x", id="pct-ff-value"),
        pytest.param(b"grant_type=password&user%ffname=a&password=x", id="pct-ff-key"),
        pytest.param(b"grant_type=password&username=%ED%A0%80&password=x", id="pct-surrogate"),
        pytest.param(b"grant_type=password&username=%C0%AF&password=x", id="pct-overlong"),
        pytest.param(b"grant_type=pass\xc3word", id="raw-truncated"),
    ],
)
async def test_invalid_utf8_in_form_is_400(client, raw):
    body = await _bad(await client.post(TOKEN, data=raw, headers=FORM), 400, "invalid_request")
    assert "UTF-8" in body["error_description"]


async def test_too_many_form_fields_is_400(client):
    raw = "&".join(f"f{i}=v" for i in range(60)).encode()
    await _bad(await client.post(TOKEN, data=raw, headers=FORM), 400, "invalid_request")


@pytest.mark.parametrize(
    "raw", [b"", b"&&&", b"===", b"grant_type", b"%", b"%%%zz", b"\x00", b"a=1;b=2"]
)
async def test_junk_form_is_400(client, raw):
    response = await client.post(TOKEN, data=raw, headers=FORM)
    await _bad(response, 400)


@pytest.mark.parametrize(
    "content_type", [None, "application/json", "text/plain", "multipart/form-data; boundary=x"]
)
async def test_form_endpoint_wrong_content_type_is_415(client, content_type):
    headers = {} if content_type is None else {"Content-Type": content_type}
    response = await client.post(
        TOKEN, data=b"grant_type=password&username=admin&password=x", headers=headers
    )
    await _bad(response, 415, "invalid_request")


async def test_form_content_type_with_charset_is_accepted(client):
    response = await client.post(
        TOKEN,
        data=f"grant_type=password&username=admin&password={ADMIN_PASSWORD}".encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded; charset=UTF-8"},
    )
    assert response.status_code == 200


# --- body size ----------------------------------------------------------------------------


@pytest.mark.parametrize("path", ALL_BODY_ENDPOINTS)
async def test_body_over_max_body_bytes_is_413(settings_factory, path):
    async with running_app(settings_factory(max_body_bytes=2048)) as test_app:
        client = test_app.test_client()
        headers = FORM if path == TOKEN else JSON
        if path == TOKEN:
            raw = b"grant_type=password&username=admin&password=" + b"p" * 4096
        else:
            raw = b'{"username": "admin", "password": "' + b"p" * 4096 + b'"}'
        assert len(raw) > 4096
        body = await _bad(await client.post(path, data=raw, headers=headers), 413)
        assert body["error"]


@pytest.mark.parametrize("path", ALL_BODY_ENDPOINTS)
async def test_body_over_max_body_bytes_with_lying_content_length_is_413(settings_factory, path):
    async with running_app(settings_factory(max_body_bytes=2048)) as test_app:
        client = test_app.test_client()
        headers = {**(FORM if path == TOKEN else JSON), "Content-Length": "100"}
        response = await client.post(path, data=b"x" * 4096, headers=headers)
        await _bad(response, 413)


async def test_body_just_under_max_body_bytes_is_accepted(settings_factory):
    async with running_app(settings_factory(max_body_bytes=2048)) as test_app:
        client = test_app.test_client()
        padding = "p" * (2048 - 100)
        raw = f'{{"username": "admin", "password": "{ADMIN_PASSWORD}", "pad": "{padding}"}}'
        assert len(raw) <= 2048
        response = await client.post(LOGIN, data=raw.encode(), headers=JSON)
        assert response.status_code == 200


async def test_oversized_body_does_not_count_as_a_failed_login(settings_factory):
    async with running_app(settings_factory(max_body_bytes=2048)) as test_app:
        client = test_app.test_client()
        raw = b'{"username": "admin", "password": "' + b"p" * 4096 + b'"}'
        for _ in range(10):
            assert (await client.post(LOGIN, data=raw, headers=JSON)).status_code == 413
        assert (await login(client)).status_code == 200


# --- routing ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/nope"),
        ("GET", "/nope/123"),
        ("POST", "/api/v1/nope"),
        ("GET", "/api/v1/auth/login/extra"),
        ("GET", "/api/v2/users/me"),
        ("DELETE", "/does/not/exist"),
        ("GET", "/%ff%fe"),
        ("GET", "/" + "a" * 5000),
    ],
)
async def test_unknown_path_is_404_json(client, method, path):
    response = await client.open(path, method=method)
    await _bad(response, 404, "not_found")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", LOGIN),
        ("PUT", LOGIN),
        ("DELETE", LOGIN),
        ("PATCH", LOGOUT),
        ("GET", LOGOUT),
        ("GET", TOKEN),
        ("PUT", TOKEN),
        ("POST", "/health"),
        ("POST", "/metrics"),
        ("DELETE", "/.well-known/jwks.json"),
        ("POST", "/api/v1/users/me"),
    ],
)
async def test_wrong_method_is_405_json(client, method, path):
    response = await client.open(path, method=method)
    await _bad(response, 405, "method_not_allowed")
    assert response.headers["Allow"]
    assert method not in response.headers["Allow"].split(", ")


async def test_unknown_method_is_not_a_5xx(client):
    response = await client.open(LOGIN, method="BREW")
    await _bad(response, 405)


# --- headers ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "authorization",
    ["Bearer \u00e9\u00e9\u00e9", "Bearer " + "\x7f" * 10, "Bearer a b c", "\u00ff" * 100],
)
async def test_odd_authorization_headers_are_401_json(client, authorization):
    response = await client.get("/api/v1/users/me", headers={"Authorization": authorization})
    await _bad(response, 401, "invalid_token")


async def test_odd_forwarded_for_header_is_ignored(client):
    response = await login(client, headers={"X-Forwarded-For": "\u00ff, not-an-ip, , ::::"})
    assert response.status_code == 200
