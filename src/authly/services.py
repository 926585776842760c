"""The Services bundle kept on the app: everything a request handler may use.

Assembled once at start-up (lifecycle.py); handlers only read it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import trio

from authly.backends.slot import CacheSlot, RateLimiterSlot, SessionSlot
from authly.config import Settings
from authly.housekeeping import Housekeeper
from authly.metrics import Metrics
from authly.oauth.client_auth import ClientAuthenticator
from authly.oauth.consent import Consents
from authly.oauth.metadata import MetadataDocument
from authly.oauth.pending import PendingRequests
from authly.oauth.registry import Registry
from authly.oidc.backchannel import BackchannelSender
from authly.oidc.id_tokens import IdTokens
from authly.oidc.logout import Logouts
from authly.store.db import Database
from authly.tokens.jwks import JwksDocument
from authly.tokens.keys import SigningKeys
from authly.tokens.service import TokenService
from authly.users.accounts import Accounts
from authly.users.admin_auth import AdminAuth
from authly.users.browser_sessions import BrowserSessions
from authly.users.login import LoginService
from authly.users.passwords import PasswordHasher
from authly.users.profiles import UserProfiles

if TYPE_CHECKING:
    from authly.backends.records import LastError
    from authly.supervisor import Supervisor

EXTENSION_KEY = "authly"
STOPPING_KEY = "authly_stopping"  # set when the app stops serving (/health/ready)


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
    pending: PendingRequests
    consents: Consents
    browser_sessions: BrowserSessions
    admin_auth: AdminAuth
    registry: Registry
    metadata: MetadataDocument
    profiles: UserProfiles
    jwks: JwksDocument
    accounts: Accounts
    id_tokens: IdTokens
    backchannel: BackchannelSender
    logouts: Logouts
    client_auth: ClientAuthenticator
    supervisor: Supervisor | None = None
    housekeeper: Housekeeper | None = None
    redis_error: LastError | None = None  # Redis configured but never tried
    owned_scopes: list[trio.CancelScope] = field(default_factory=list)

    def slots(self) -> tuple[RateLimiterSlot, CacheSlot, SessionSlot]:
        return (self.rate_limit, self.cache, self.sessions)
