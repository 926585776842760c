"""Admin API (`/api/v1/admin/*`): clients and scopes. Filled in by the admin work."""

from __future__ import annotations

from quart import Blueprint

bp = Blueprint("admin", __name__, url_prefix="/api/v1/admin")
