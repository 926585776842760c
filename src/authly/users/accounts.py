"""Managing user accounts: what the admin API's user endpoints and the self-service
password change do, over the store, the token service and the profile cache.

Every change invalidates the user's cached profile. Ending a user's sessions (admin
revoke-sessions, password change or reset, disable, delete) revokes their live
refresh-token families (with the access tokens issued from them), voids the browser
and admin sessions they started before that moment (``users.sessions_valid_after``),
and reports the families ended to ``on_sessions_ended`` (wired from above to
back-channel logout: oidc/backchannel.py, as this layer cannot import it).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from authly.errors import Conflict, InvalidGrant, InvalidRequest, NotFound
from authly.store import user_sessions as session_repo
from authly.store import users as user_repo
from authly.store.db import Database
from authly.store.users import BOOLEAN_ATTRIBUTES, TEXT_ATTRIBUTES, User
from authly.tokens.service import TokenService
from authly.users.login import MAX_PASSWORD, LoginService
from authly.users.passwords import PasswordHasher
from authly.users.profile_fields import parse_changes
from authly.users.profiles import UserProfiles

log = logging.getLogger("authly.users")

MIN_PASSWORD = 8
MAX_PAGE = 200
DEFAULT_PAGE = 50
MAX_SEARCH = 200


def admin_view(user: User) -> dict[str, Any]:
    """The user as the admin API shows it: every profile field, null when unset."""
    attributes = user.attributes
    view: dict[str, Any] = {
        "id": user.id,
        "username": user.username,
        "email": attributes.get("email"),
        "is_admin": user.is_admin,
        "is_active": user.is_active,
        "created_at": int(user.created_at),
        "updated_at": int(user.updated_at),
    }
    for name in (*TEXT_ATTRIBUTES, *BOOLEAN_ATTRIBUTES, "address"):
        view[name] = attributes.get(name)
    return view


@dataclass(frozen=True)
class Page:
    users: list[User]
    total: int
    limit: int
    offset: int

    @property
    def next_offset(self) -> int | None:
        following = self.offset + len(self.users)
        return following if following < self.total else None


@dataclass(frozen=True)
class EndedSession:
    """A login session (refresh-token family) that ended: its client, and the browser
    session it was signed in through (the ``sid`` of its ID tokens; None if unknown)."""

    client_id: str
    sid: str | None


# Told (user id, sessions ended) after they ended; what it raises is logged, not raised.
SessionsEnded = Callable[[str, Sequence[EndedSession]], Awaitable[object]]


def check_new_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise InvalidRequest(f"The new password must have at least {MIN_PASSWORD} characters.")
    if len(password) > MAX_PASSWORD:
        raise InvalidRequest(f"The new password is longer than {MAX_PASSWORD} characters.")
    return password


class Accounts:
    def __init__(
        self,
        db: Database,
        hasher: PasswordHasher,
        profiles: UserProfiles,
        tokens: TokenService,
        login: LoginService,
        *,
        on_sessions_ended: SessionsEnded | None = None,
        now: Callable[[], float] = time.time,
    ) -> None:
        self._db = db
        self._hasher = hasher
        self._profiles = profiles
        self._tokens = tokens
        self._login = login
        self._on_sessions_ended = on_sessions_ended
        self._now = now

    async def find(self, ref: str) -> User:
        """The user with this id, or else this username; NotFound otherwise."""
        user = await self._db.run(user_repo.get_by_id, ref)
        if user is None and len(ref) <= 255:
            user = await self._db.run(user_repo.get_by_username, ref)
        if user is None:
            raise NotFound("No such user.")
        return user

    async def page(self, search: str | None, limit: int | None, offset: int | None) -> Page:
        limit = DEFAULT_PAGE if limit is None else limit
        offset = 0 if offset is None else offset
        if not 1 <= limit <= MAX_PAGE:
            raise InvalidRequest(f"limit must be between 1 and {MAX_PAGE}.")
        if offset < 0:
            raise InvalidRequest("offset must not be negative.")
        if search is not None and len(search) > MAX_SEARCH:
            raise InvalidRequest(f"search is longer than {MAX_SEARCH} characters.")
        users, total = await self._db.run(user_repo.search, search or None, limit, offset)
        return Page(users, total, limit, offset)

    async def update(self, ref: str, body: Mapping[str, Any]) -> User:
        """Set profile fields (profile_fields.parse_changes); InvalidRequest on bad ones."""
        user = await self.find(ref)
        changes = parse_changes(body)
        if not changes:
            raise InvalidRequest("Nothing to change: name at least one profile field.")
        updated = await self._db.run(user_repo.update_attributes, user.id, changes, self._now())
        await self._profiles.invalidate(user.id)
        if updated is None:
            raise NotFound("No such user.")
        return updated

    async def set_active(self, ref: str, active: bool, *, actor_id: str) -> User:
        """Enable or disable (the flag alone: see ``disable``); a disabled user cannot
        log in, refresh or use a token. Administrators cannot disable themselves
        (Conflict)."""
        user = await self.find(ref)
        if not active and user.id == actor_id:
            raise Conflict("You cannot disable your own account.")
        updated = await self._db.run(user_repo.set_active, user.id, active, self._now())
        await self._profiles.invalidate(user.id)
        if updated is None:
            raise NotFound("No such user.")
        return updated

    async def disable(self, ref: str, *, actor_id: str) -> tuple[User, int]:
        """Disable the user and end their sessions: enabling them again later does not
        bring back their tokens. Returns (user, families revoked)."""
        user = await self.set_active(ref, False, actor_id=actor_id)
        return user, await self.end_sessions(user.id)

    async def delete(self, ref: str, *, actor_id: str) -> User:
        """Remove the user and end their sessions; their tokens stop working."""
        user = await self.find(ref)
        if user.id == actor_id:
            raise Conflict("You cannot delete your own account.")
        await self.end_sessions(user.id)
        await self._db.run(user_repo.delete, user.id)
        await self._profiles.invalidate(user.id)
        return user

    async def reset_password(self, ref: str, password: str) -> tuple[User, int]:
        """Set a new password and end every session of the user; (user, families revoked)."""
        user = await self.find(ref)
        password_hash = await self._hasher.hash(check_new_password(password))
        await self._db.run(user_repo.update_password_hash, user.id, password_hash, self._now())
        revoked = await self.end_sessions(user.id)
        return user, revoked

    async def sessions(self, ref: str) -> tuple[User, list[dict[str, Any]]]:
        """The user's live login sessions: client, scope, times, and the address the
        session record kept."""
        user = await self.find(ref)
        families = await self._db.run(session_repo.live_families, user.id, self._now())
        listed: list[dict[str, Any]] = []
        for family in families:
            record = await self._tokens.session(family.family_id) or {}
            listed.append(
                {
                    "session_id": family.family_id,
                    "client_id": family.client_id,
                    "scope": family.scope,
                    "created_at": int(family.created_at),
                    "last_rotated_at": None
                    if family.last_rotated_at is None
                    else int(family.last_rotated_at),
                    "expires_at": int(family.expires_at),
                    "ip": record.get("ip") or None,
                }
            )
        return user, listed

    async def revoke_sessions(self, ref: str) -> tuple[User, int]:
        user = await self.find(ref)
        return user, await self.end_sessions(user.id)

    async def end_sessions(self, user_id: str, *, keep: str | None = None) -> int:
        """Revoke the user's live families except ``keep``; void browser and admin
        sessions started until now; report the families ended to ``on_sessions_ended``.
        Returns how many families were revoked."""
        now = self._now()
        await self._db.run(user_repo.void_sessions, user_id, now)
        families = await self._db.run(session_repo.live_families, user_id, now)
        ended: list[EndedSession] = []
        for family in families:
            if family.family_id == keep:
                continue
            await self._tokens.revoke_family(family.family_id)
            ended.append(EndedSession(family.client_id, family.session_sid))
        await self._profiles.invalidate(user_id)
        await self._report_ended(user_id, ended)
        return len(ended)

    async def _report_ended(self, user_id: str, ended: list[EndedSession]) -> None:
        if not ended or self._on_sessions_ended is None:
            return
        try:
            await self._on_sessions_ended(user_id, ended)
        except Exception:
            # The sessions have ended; failing to tell the clients must not undo that.
            log.exception("could not report the ended sessions of user %s", user_id)

    async def change_password(
        self, user_id: str, current: str, new: str, *, client_ip: str, keep_session: str | None
    ) -> int:
        """Self-service: check ``current`` under the login limits, store ``new``, end the
        user's other sessions; returns how many families were revoked.

        Error handling: InvalidRequest for a bad new password, InvalidGrant (400) for a
        wrong current one, RateLimitExceeded when the login limits are exhausted.
        """
        user = await self._db.run(user_repo.get_by_id, user_id)
        if user is None or not user.is_active:
            raise InvalidGrant("The account is disabled or no longer exists.")
        check_new_password(new)
        await self._login.authenticate(user.username, current, client_ip)
        if new == current:
            raise InvalidRequest("The new password must differ from the current one.")
        password_hash = await self._hasher.hash(new)
        await self._db.run(user_repo.update_password_hash, user.id, password_hash, self._now())
        revoked = await self.end_sessions(user.id, keep=keep_session)
        log.info("user %s (%s) changed their password", user.username, user.id)
        return revoked
