"""Signing keys, loaded once as key objects (parsing a PEM per signature costs ≈ 37 ms).

Three algorithms: RS256 (RSA 2048: access tokens, and ID tokens by default), ES256
(P-256) and EdDSA (Ed25519), the last two selectable per client for ID tokens. Each
has one *current* key, the one that signs. ``rotate(alg)`` adds a new current key and
retires the previous one: a retired key stays published (JWKS) and trusted
(``keyset``) for ``retention`` seconds after ``retired_at`` — longer than any token it
signed can live — and then drops out on its own (evaluated whenever the keys are read;
the row stays in the store, listed as ``expired``).

Several instances share the store. An instance sees another's rotation when it
reloads the keys from the store, which happens:

- whenever the JWKS document is rebuilt (its cache entry is missing or expired:
  tokens/jwks.py), so with the cache on Redis a rotation, which deletes the shared
  entry, reaches every instance's JWKS at once;
- every ``refresh_interval`` seconds (``run_refresh``, a task in the app's nursery),
  so an instance stops signing with a retired key within that interval;
- when a token names a ``kid`` this instance does not know (``reload_for_unknown``),
  at most once per ``UNKNOWN_KID_INTERVAL`` seconds, so a token signed with a key
  rotated in on another instance a moment ago verifies here too.

Because another instance may go on signing with a retired key for up to
``refresh_interval``, the retention is that interval plus the longest token lifetime
plus a leeway (``retention_for``).
"""

from __future__ import annotations

import logging
import math
import time
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import partial
from typing import Any

import trio
from joserfc.errors import SecurityWarning
from joserfc.jwk import ECKey, KeyParameters, KeySet, OKPKey, RSAKey

from authly.errors import InvalidRequest, StoreError
from authly.store import keys as key_repo
from authly.store.db import Database
from authly.store.keys import SigningKeyRow

log = logging.getLogger("authly.keys")

ALGORITHM = "RS256"  # access tokens, and ID tokens unless a client asks otherwise
ALGORITHMS = ("RS256", "ES256", "EdDSA")
REFRESH_INTERVAL = 300.0  # = the JWKS cache TTL
UNKNOWN_KID_INTERVAL = 5.0
RETENTION_LEEWAY = 60.0  # clock skew and the verifiers' exp leeway

# OpenID Connect registers "EdDSA" (and clients ask for it by that name); joserfc warns
# that RFC 9864 deprecates it in favour of "Ed25519". Deliberate: silence only that.
warnings.filterwarnings("ignore", message="EdDSA is deprecated", category=SecurityWarning)

Key = RSAKey | ECKey | OKPKey
_KEY_TYPES: dict[str, type[RSAKey] | type[ECKey] | type[OKPKey]] = {
    "RS256": RSAKey,
    "ES256": ECKey,
    "EdDSA": OKPKey,
}


def _check_alg(alg: str) -> None:
    if alg not in ALGORITHMS:
        raise InvalidRequest(
            f"Unknown signing algorithm {alg!r}; use one of {', '.join(ALGORITHMS)}."
        )


def generate_key(alg: str) -> tuple[str, str, str]:
    """A fresh key for ``alg``: (kid, alg, private PEM). The kid is its RFC 7638 thumbprint."""
    _check_alg(alg)
    key: Key
    if alg == "RS256":
        key = RSAKey.generate_key(2048, private=True)
    elif alg == "ES256":
        key = ECKey.generate_key("P-256", private=True)
    else:
        key = OKPKey.generate_key("Ed25519", private=True)
    return key.thumbprint(), alg, key.as_pem(private=True).decode("ascii")


def generate_rsa_key() -> tuple[str, str, str]:
    return generate_key("RS256")


GENERATORS = {alg: partial(generate_key, alg) for alg in ALGORITHMS}


def retention_for(max_token_ttl: float, refresh_interval: float = REFRESH_INTERVAL) -> float:
    """How long a retired key stays published: a stale instance may sign with it for up
    to ``refresh_interval``, and what it signs lives up to ``max_token_ttl``."""
    return refresh_interval + max_token_ttl + RETENTION_LEEWAY


def _parse(row: SigningKeyRow) -> Key:
    params: KeyParameters = {"kid": row.kid, "alg": row.alg, "use": "sig"}
    return _KEY_TYPES[row.alg].import_key(row.private_pem, params)


@dataclass(frozen=True)
class KeyInfo:
    """What the admin API shows of a key (never the private part)."""

    kid: str
    alg: str
    created_at: float
    retired_at: float | None
    published_until: float | None  # None while current
    status: str  # current | retired | expired

    def public(self) -> dict[str, Any]:
        return {
            "kid": self.kid,
            "alg": self.alg,
            "status": self.status,
            "created_at": int(self.created_at),
            "retired_at": None if self.retired_at is None else int(self.retired_at),
            "published_until": (
                None if self.published_until is None else int(self.published_until)
            ),
        }


class _View:
    """An immutable snapshot: which keys sign, which are published, until when."""

    def __init__(
        self, rows: list[SigningKeyRow], parsed: dict[str, Key], now: float, retention: float
    ) -> None:
        self.rows = rows
        self.current: dict[str, Key] = {}
        published: list[Key] = []
        self.valid_until = math.inf
        for row in rows:  # newest first
            key = parsed.get(row.kid)  # None: an unknown algorithm, or expired
            if key is None:
                continue
            if row.retired_at is None:
                self.current.setdefault(row.alg, key)
            elif now >= row.retired_at + retention:
                continue
            else:
                self.valid_until = min(self.valid_until, row.retired_at + retention)
            published.append(key)
        self.kids = frozenset(str(k.kid) for k in published)
        self.keyset = KeySet(published)  # type: ignore[arg-type]
        self.jwks = {"keys": [k.as_dict(private=False) for k in published]}


class SigningKeys:
    """The signing keys as key objects; see the module docstring for the rules.

    ``db`` is the store to reload from (None: a fixed set, for tests and tools).
    """

    def __init__(
        self,
        rows: list[SigningKeyRow],
        *,
        db: Database | None = None,
        retention: float = math.inf,
        now: Callable[[], float] = time.time,
        unknown_kid_interval: float = UNKNOWN_KID_INTERVAL,
    ) -> None:
        if not any(r.retired_at is None for r in rows):
            raise ValueError("at least one current signing key is required")
        self._db = db
        self.retention = retention
        self._now = now
        self._unknown_kid_interval = unknown_kid_interval
        self._last_unknown_reload = -math.inf
        self._unknown_lock = trio.Lock()
        # Read-and-install under one lock, so a slow reload never installs rows older
        # than a rotation that finished meanwhile.
        self._store_lock = trio.Lock()
        self._parsed: dict[str, Key] = {}
        self.reloads = 0  # reloads from the store so far
        self._view = self._build(rows, self._parse_new(rows))

    @classmethod
    async def open(
        cls,
        db: Database,
        *,
        retention: float,
        now: Callable[[], float] = time.time,
        unknown_kid_interval: float = UNKNOWN_KID_INTERVAL,
    ) -> SigningKeys:
        """Load the keys from ``db``, first generating a current key for each algorithm
        that has none (under the store's write lock)."""
        rows = await db.run(key_repo.ensure_current, GENERATORS, now())
        return cls(
            rows, db=db, retention=retention, now=now, unknown_kid_interval=unknown_kid_interval
        )

    # --- reading (sync, cheap) ------------------------------------------------------------

    def _fresh(self) -> _View:
        view = self._view
        if self._now() >= view.valid_until:  # a retired key's time is up
            view = self._view = self._build(view.rows, self._parsed)
        return view

    def current(self, alg: str) -> Key:
        """The key to sign with for ``alg`` (its kid is ``key.kid``).

        Raises InvalidRequest for an algorithm Authly does not sign with, LookupError
        if this set has no current key for it (only sets built by hand can lack one).
        """
        _check_alg(alg)
        key = self._fresh().current.get(alg)
        if key is None:
            raise LookupError(f"no current {alg} signing key")
        return key

    @property
    def active(self) -> Key:
        """The current RS256 key (access tokens)."""
        return self.current(ALGORITHM)

    @property
    def kid(self) -> str:
        return str(self.active.kid)

    @property
    def keyset(self) -> KeySet:
        """Every published key: what tokens are verified against."""
        return self._fresh().keyset

    def knows(self, kid: str) -> bool:
        return kid in self._fresh().kids

    def jwks(self) -> dict[str, Any]:
        """The public JWK Set (RFC 7517 §5) of the published keys."""
        return self._fresh().jwks

    def seconds_to_change(self) -> float:
        """Seconds until the published set changes by itself (a retired key expiring);
        infinite when no retired key is published."""
        return self._fresh().valid_until - self._now()

    def infos(self) -> list[KeyInfo]:
        """Every key this instance loaded, newest first, with its status now."""
        now = self._now()
        infos = []
        for row in self._fresh().rows:
            until = None if row.retired_at is None else row.retired_at + self.retention
            if until is None:
                status = "current"
            elif now < until:
                status = "retired"
            else:
                status = "expired"
            infos.append(KeyInfo(row.kid, row.alg, row.created_at, row.retired_at, until, status))
        return infos

    # --- changing (async: the store) ----------------------------------------------------

    async def reload(self) -> None:
        """Read the keys from the store again (parsing only keys not seen before)."""
        if self._db is None:
            return
        async with self._store_lock:
            rows = await self._db.run(key_repo.list_all)
            await self._install(rows)

    async def reload_for_unknown(self, kid: str) -> bool:
        """A token names ``kid``, which is not published here: reload once (at most once
        per ``unknown_kid_interval``, whatever the kids) and say whether it is now.

        A store failure counts as "not known" (logged); the caller rejects the token.
        """
        async with self._unknown_lock:
            if self.knows(kid):
                return True  # a concurrent caller's reload found it
            now = self._now()
            if now - self._last_unknown_reload < self._unknown_kid_interval:
                return False
            self._last_unknown_reload = now
            try:
                await self.reload()
            except StoreError as exc:
                log.warning("reloading signing keys for an unknown kid failed: %s", exc)
                return False
            return self.knows(kid)

    async def rotate(self, alg: str) -> KeyInfo:
        """Add a new current key for ``alg`` and retire the previous one.

        Raises InvalidRequest for an unknown algorithm, StoreError if the store fails.
        """
        _check_alg(alg)
        if self._db is None:
            raise StoreError("these signing keys have no store to rotate in")
        async with self._store_lock:
            rows = await self._db.run(key_repo.rotate, alg, GENERATORS[alg], self._now())
            await self._install(rows)
        return next(i for i in self.infos() if i.alg == alg and i.status == "current")

    async def run_refresh(
        self, interval: float, *, task_status: trio.TaskStatus[trio.CancelScope]
    ) -> None:
        """Reload every ``interval`` seconds until cancelled (a task in the app's nursery)."""
        with trio.CancelScope() as scope:
            task_status.started(scope)
            while True:
                await trio.sleep(interval)
                try:
                    await self.reload()
                except StoreError as exc:
                    log.warning("reloading signing keys failed, will retry: %s", exc)

    # --- internals ------------------------------------------------------------------------

    def _parse_new(self, rows: Iterable[SigningKeyRow]) -> dict[str, Key]:
        """Key objects for every row not yet expired, reusing those parsed before."""
        now = self._now()
        parsed = {}
        for row in rows:
            if row.alg not in _KEY_TYPES:
                continue
            if row.retired_at is not None and now >= row.retired_at + self.retention:
                continue
            known = self._parsed.get(row.kid)
            parsed[row.kid] = known if known is not None else _parse(row)
        return parsed

    def _build(self, rows: list[SigningKeyRow], parsed: dict[str, Key]) -> _View:
        self._parsed = parsed
        return _View(rows, parsed, self._now(), self.retention)

    async def _install(self, rows: list[SigningKeyRow]) -> None:
        if not any(r.retired_at is None for r in rows):
            raise StoreError("the store has no current signing key")
        # An RSA PEM takes tens of ms to parse: off the event loop.
        parsed = await trio.to_thread.run_sync(self._parse_new, rows)
        self._view = self._build(rows, parsed)
        self.reloads += 1
