"""Admin API for users (`/api/v1/admin/users`), behind the admin API's own checks
(network, then an admin credential: web/admin.py). The rules live in users/accounts.py;
this module only adapts HTTP to them.

A user is addressed by id or, failing that, by username.
"""

from __future__ import annotations

import logging

from quart import Blueprint, Response, g, request

from authly.errors import InvalidRequest
from authly.users.accounts import Accounts, admin_view
from authly.users.admin_auth import AdminPrincipal
from authly.users.login import MAX_PASSWORD
from authly.web.admin import admin_guard
from authly.web.context import services
from authly.web.parsing import read_json_object, string_field
from authly.web.render import NO_STORE, json_response

bp = Blueprint("admin_users", __name__, url_prefix="/api/v1/admin/users")
bp.before_request(admin_guard)
log = logging.getLogger("authly.admin")


def _accounts() -> Accounts:
    return services().accounts


def _actor() -> AdminPrincipal:
    principal: AdminPrincipal = g.admin
    return principal


def _audit(action: str, target: str) -> None:
    who = _actor().user
    log.info("admin %s (%s) %s %s", who.username, who.id, action, target)


def _int_arg(name: str) -> int | None:
    text = request.args.get(name)
    if text is None or text == "":
        return None
    if not text.isdigit() or len(text) > 9:
        raise InvalidRequest(f"{name} must be a non-negative integer.")
    return int(text)


@bp.get("")
async def list_users() -> Response:
    page = await _accounts().page(request.args.get("search"), _int_arg("limit"), _int_arg("offset"))
    body = {
        "users": [admin_view(user) for user in page.users],
        "total": page.total,
        "limit": page.limit,
        "offset": page.offset,
        "next_offset": page.next_offset,
    }
    return json_response(body, headers=NO_STORE)


@bp.get("/<ref>")
async def show_user(ref: str) -> Response:
    return json_response(admin_view(await _accounts().find(ref)), headers=NO_STORE)


@bp.patch("/<ref>")
async def update_user(ref: str) -> Response:
    body = await read_json_object()
    user = await _accounts().update(ref, body)
    _audit(f"updated the profile ({', '.join(sorted(body))}) of user", user.id)
    return json_response(admin_view(user), headers=NO_STORE)


@bp.post("/<ref>/disable")
async def disable_user(ref: str) -> Response:
    user, revoked = await _accounts().disable(ref, actor_id=_actor().user.id)
    _audit(f"disabled ({revoked} session(s) revoked) user", user.id)
    return json_response(admin_view(user), headers=NO_STORE)


@bp.post("/<ref>/enable")
async def enable_user(ref: str) -> Response:
    user = await _accounts().set_active(ref, True, actor_id=_actor().user.id)
    _audit("enabled user", user.id)
    return json_response(admin_view(user), headers=NO_STORE)


@bp.delete("/<ref>")
async def delete_user(ref: str) -> Response:
    user = await _accounts().delete(ref, actor_id=_actor().user.id)
    _audit("deleted user", f"{user.username} ({user.id})")
    return Response("", status=204, headers=NO_STORE)


@bp.post("/<ref>/reset-password")
async def reset_password(ref: str) -> Response:
    body = await read_json_object()
    password = string_field(body, "password", MAX_PASSWORD)
    user, revoked = await _accounts().reset_password(ref, password)
    _audit("reset the password of user", user.id)
    return json_response({"id": user.id, "sessions_revoked": revoked}, headers=NO_STORE)


@bp.get("/<ref>/sessions")
async def list_sessions(ref: str) -> Response:
    user, sessions = await _accounts().sessions(ref)
    return json_response({"id": user.id, "sessions": sessions}, headers=NO_STORE)


@bp.delete("/<ref>/sessions")
async def revoke_sessions(ref: str) -> Response:
    user, revoked = await _accounts().revoke_sessions(ref)
    _audit("revoked the sessions of user", user.id)
    return json_response({"id": user.id, "sessions_revoked": revoked}, headers=NO_STORE)
