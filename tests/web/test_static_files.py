"""The pages' static files (security review, defect C): any path answers 404, never a
500, and the stylesheet is still served with its content type and caching headers."""

from __future__ import annotations

from pathlib import Path

import pytest

import authly.web

STATIC = "/api/v1/oauth/static/"
STYLESHEET = Path(authly.web.__file__).parent / "static" / "style.css"


async def test_the_stylesheet_is_served_with_caching_headers(client):
    response = await client.get(STATIC + "style.css")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/css; charset=utf-8"
    assert await response.get_data() == STYLESHEET.read_bytes()
    assert response.headers["Cache-Control"] == "public, max-age=43200"
    assert "Expires" in response.headers
    assert "Last-Modified" in response.headers
    etag = response.headers["ETag"]
    again = await client.get(STATIC + "style.css", headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert await again.get_data() == b""


async def test_a_range_of_the_stylesheet(client):
    response = await client.get(STATIC + "style.css", headers={"Range": "bytes=0-9"})
    assert response.status_code == 206
    assert await response.get_data() == STYLESHEET.read_bytes()[:10]


@pytest.mark.parametrize(
    "name",
    [
        "a" * 300,  # the review's request: ENAMETOOLONG was a 500
        "a" * 5000,
        "a/" * 2000 + "style.css",
        ("a" * 255 + "/") * 20 + "x",
        "%00",
        "style.css%00",
        "style%00.css",
        "..%2fauthorize.py",
        "..%2F..%2Fconfig.py",
        "%2e%2e/%2e%2e/config.py",
        "../templates/base.html",
        "x%2f..%2f..%2fconfig.py",
        "style.css/",
        "style.css/..",
        "STYLE.CSS",
        "%ff%fe",
        "nonexistent.css",
    ],
)
async def test_any_other_name_is_404(client, name):
    response = await client.get(STATIC + name)
    assert response.status_code == 404, name[:80]


@pytest.mark.parametrize("path", ["/static/" + "a" * 300, "/static/style.css", "/static/%00"])
async def test_there_is_no_app_level_static_route(client, path):
    response = await client.get(path)
    assert response.status_code == 404
    assert (await response.get_json())["error"] == "not_found"
