"""The Services bundle kept on the app: everything a request handler may use."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import trio

from authly.backends.slot import CacheSlot, RateLimiterSlot, SessionSlot
from authly.config import Settings
from authly.housekeeping import Housekeeper
from authly.metrics import Metrics
from authly.oauth.authorization import AuthorizationCodes
from authly.oauth.metadata import MetadataDocument
from authly.oauth.pending import PendingRequests
from authly.store.db import Database
from authly.tokens.jwks import JwksDocument
from authly.tokens.keys import SigningKeys
from authly.tokens.service import TokenService
from authly.users.login import LoginService
from authly.users.passwords import PasswordHasher
from authly.users.profiles import UserProfiles

if TYPE_CHECKING:
    from authly.supervisor import Supervisor

EXTENSION_KEY = "authly"


@dataclass
class Services:
    settings: Settings
    metrics: Metrics
    db: Database
    keys: SigningKeys
    hasher: PasswordHasher
    rate_limit: RateLimiterSlot
    cache: CacheSlot
    sessions: SessionSlot
    login: LoginService
    tokens: TokenService
    codes: AuthorizationCodes
    pending: PendingRequests
    metadata: MetadataDocument
    profiles: UserProfiles
    jwks: JwksDocument
    supervisor: Supervisor | None = None
    housekeeper: Housekeeper | None = None
    redis_error: str | None = None
    now: Callable[[], float] = time.time
    started_at: float = field(default_factory=time.time)
    owned_scopes: list[trio.CancelScope] = field(default_factory=list)

    def slots(self) -> tuple[RateLimiterSlot, CacheSlot, SessionSlot]:
        return (self.rate_limit, self.cache, self.sessions)
