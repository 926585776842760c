"""The authorization endpoint and its HTML pages (login, consent, errors)."""

from __future__ import annotations

from quart import Blueprint

bp = Blueprint(
    "authorize",
    __name__,
    url_prefix="/api/v1/oauth",
    template_folder="templates",
    static_folder="static",
    static_url_path="/static",
)
