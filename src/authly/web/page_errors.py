"""Error handlers for blueprints of HTML pages: every error is a page, never JSON,
never a redirect, never a traceback."""

from __future__ import annotations

import logging

from quart import Blueprint, Response
from werkzeug.exceptions import HTTPException

from authly.errors import OAuthError, StoreError
from authly.web.pages import error_page

log = logging.getLogger("authly.web")


def register_page_errors(bp: Blueprint, where: str) -> None:
    """Show OAuth, HTTP, store and unexpected errors of ``bp`` as error pages;
    ``where`` names the pages in the log."""

    @bp.errorhandler(OAuthError)
    async def _oauth_error(exc: OAuthError) -> Response:
        return await error_page(exc.description, exc.status_code, headers=exc.headers())

    @bp.errorhandler(HTTPException)
    async def _http_error(exc: HTTPException) -> Response:
        code = exc.code or 500
        return await error_page(exc.description or "The request could not be handled.", code)

    @bp.errorhandler(StoreError)
    async def _store_error(exc: StoreError) -> Response:
        log.error("store unavailable: %s", exc)
        return await error_page("The server is temporarily unavailable. Try again shortly.", 503)

    @bp.errorhandler(Exception)
    async def _unexpected(exc: Exception) -> Response:
        log.exception("unhandled error on %s", where)
        return await error_page("The server could not handle the request.", 500)
