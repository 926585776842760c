"""Errors to responses, once, at the edge.

OAuthError subclasses carry their status, body and headers; werkzeug's HTTP errors
(404, 405, 413, ...) are mapped to the same JSON shape; anything else is logged with
its traceback and answered with a plain 500 JSON body (never the traceback).
"""

from __future__ import annotations

import logging
from typing import Any

from quart import Quart, Response, jsonify
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from authly.errors import InvalidRequest, NotFound, OAuthError, StoreError
from authly.web.errors import MethodNotAllowed, RequestTooLarge, TemporarilyUnavailable

log = logging.getLogger("authly.web")

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    response = jsonify(body)
    response.status_code = status
    if headers:
        response.headers.update(headers)
    return response


def error_response(error: OAuthError) -> Response:
    return json_response(error.body(), error.status_code, {**NO_STORE, **error.headers()})


def _from_http_exception(exc: HTTPException) -> OAuthError:
    code = exc.code or 500
    if code == 404:
        return NotFound()
    if code == 405:
        return MethodNotAllowed()
    if isinstance(exc, RequestEntityTooLarge) or code == 413:
        return RequestTooLarge()
    if 400 <= code < 500:
        return InvalidRequest(exc.description or None, status_code=code)
    return OAuthError(status_code=code)


def register_error_handlers(app: Quart) -> None:
    @app.errorhandler(OAuthError)
    async def _oauth(error: OAuthError) -> Response:
        return error_response(error)

    @app.errorhandler(HTTPException)
    async def _http(exc: HTTPException) -> Response:
        response = error_response(_from_http_exception(exc))
        if exc.code == 405 and exc.get_headers():
            allow = dict(exc.get_headers()).get("Allow")
            if allow:
                response.headers["Allow"] = allow
        return response

    @app.errorhandler(StoreError)
    async def _store(exc: StoreError) -> Response:
        log.error("store unavailable: %s", exc)
        return error_response(TemporarilyUnavailable())

    @app.errorhandler(Exception)
    async def _unexpected(exc: Exception) -> Response:
        log.exception("unhandled error")
        return error_response(OAuthError())
