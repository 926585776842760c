"""The Services bundle kept on the app: everything a request handler may use."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from authly.backends.slot import CacheSlot, RateLimiterSlot, SessionSlot
from authly.config import Settings
from authly.metrics import Metrics
from authly.store.db import Database
from authly.tokens.keys import SigningKeys
from authly.tokens.service import TokenService
from authly.users.login import LoginService
from authly.users.passwords import PasswordHasher

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
    now: Callable[[], float] = time.time
    started_at: float = field(default_factory=time.time)

    def slots(self) -> tuple[RateLimiterSlot, CacheSlot, SessionSlot]:
        return (self.rate_limit, self.cache, self.sessions)
