"""Numbered schema migrations, applied at start, once, whoever starts first.

SQLite: ``PRAGMA user_version`` records the last applied number, and processes starting
on one file at once serialise on BEGIN IMMEDIATE. PostgreSQL: the table
``authly_schema`` records it, and instances starting together serialise on an advisory
lock held while they migrate. Either way each migration runs exactly once.

The statements are written in SQLite's dialect; ``for_postgresql`` maps the few words
that differ (REAL is 4 bytes in PostgreSQL: timestamps need DOUBLE PRECISION; INTEGER
becomes BIGINT as SQLite's is 8 bytes; INSERT OR IGNORE becomes ON CONFLICT DO NOTHING).
Add a migration by appending to MIGRATIONS; never edit one that has shipped.
"""

from __future__ import annotations

import re

from authly.store.conn import Conn

# pg_advisory_lock key of the migration lock: any constant no other code uses.
MIGRATION_LOCK = 0x617574686C79  # "authly"

MIGRATIONS: list[list[str]] = [
    # 1: users, signing keys, refresh tokens
    [
        """CREATE TABLE users (
            id TEXT PRIMARY KEY,
            username TEXT NOT NULL,
            username_key TEXT NOT NULL UNIQUE,
            email TEXT,
            password_hash TEXT NOT NULL,
            is_admin INTEGER NOT NULL DEFAULT 0,
            is_active INTEGER NOT NULL DEFAULT 1,
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL
        )""",
        """CREATE TABLE signing_keys (
            kid TEXT PRIMARY KEY,
            alg TEXT NOT NULL,
            private_pem TEXT NOT NULL,
            created_at REAL NOT NULL,
            retired_at REAL
        )""",
        """CREATE TABLE refresh_tokens (
            token_hash TEXT PRIMARY KEY,
            family_id TEXT NOT NULL,
            user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            client_id TEXT NOT NULL,
            scope TEXT NOT NULL,
            created_at REAL NOT NULL,
            expires_at REAL NOT NULL,
            rotated_at REAL,
            revoked_at REAL
        )""",
        "CREATE INDEX refresh_tokens_family ON refresh_tokens(family_id)",
        "CREATE INDEX refresh_tokens_expiry ON refresh_tokens(expires_at)",
    ],
    # 2: OAuth clients, scope registry, consents, authorization codes, revoked JWTs
    [
        """CREATE TABLE clients (
            client_id TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            secret_hash TEXT,
            auth_method TEXT NOT NULL,
            redirect_uris TEXT NOT NULL,
            grant_types TEXT NOT NULL,
            scopes TEXT NOT NULL,
            first_party INTEGER NOT NULL DEFAULT 0,
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL
        )""",
        """CREATE TABLE scopes (
            name TEXT PRIMARY KEY,
            description TEXT NOT NULL,
            is_default INTEGER NOT NULL DEFAULT 0,
            created_at REAL NOT NULL
        )""",
        """CREATE TABLE consents (
            user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            client_id TEXT NOT NULL REFERENCES clients(client_id) ON DELETE CASCADE,
            scope TEXT NOT NULL,
            created_at REAL NOT NULL,
            PRIMARY KEY (user_id, client_id, scope)
        )""",
        """CREATE TABLE authorization_codes (
            code_hash TEXT PRIMARY KEY,
            client_id TEXT NOT NULL,
            user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            redirect_uri TEXT NOT NULL,
            scope TEXT NOT NULL,
            code_challenge TEXT NOT NULL,
            created_at REAL NOT NULL,
            expires_at REAL NOT NULL,
            used_at REAL,
            family_id TEXT,
            access_jti TEXT,
            access_expires_at REAL
        )""",
        """CREATE TABLE revoked_tokens (
            jti TEXT PRIMARY KEY,
            expires_at REAL NOT NULL
        )""",
        "ALTER TABLE refresh_tokens ADD COLUMN access_jti TEXT",
        "ALTER TABLE refresh_tokens ADD COLUMN access_expires_at REAL",
        "INSERT INTO scopes (name, description, is_default, created_at) VALUES"
        " ('profile', 'Your username and account details', 1, 0),"
        " ('email', 'Your email address', 1, 0),"
        " ('offline_access', 'Stay signed in (refresh tokens)', 0, 0),"
        " ('admin', 'Administer Authly (admin users only)', 0, 0)",
        # The built-in first-party client: the JSON login and password grant use it.
        "INSERT INTO clients (client_id, name, secret_hash, auth_method, redirect_uris,"
        " grant_types, scopes, first_party, created_at, updated_at) VALUES ('authly',"
        " 'Authly first-party login', NULL, 'none', '[]', '[\"password\", \"refresh_token\"]',"
        ' \'["profile", "email", "offline_access", "admin"]\', 1, 0, 0)',
    ],
    # 3: a replay seen before the first redemption recorded what it issued; that
    # redemption then revokes its own tokens (RFC 9700 §4.5, whatever the interleaving).
    ["ALTER TABLE authorization_codes ADD COLUMN replayed_at REAL"],
    # 4: user profile fields (OIDC Core §5.1)
    [
        "ALTER TABLE users ADD COLUMN name TEXT",
        "ALTER TABLE users ADD COLUMN given_name TEXT",
        "ALTER TABLE users ADD COLUMN family_name TEXT",
        "ALTER TABLE users ADD COLUMN middle_name TEXT",
        "ALTER TABLE users ADD COLUMN nickname TEXT",
        "ALTER TABLE users ADD COLUMN preferred_username TEXT",
        "ALTER TABLE users ADD COLUMN profile TEXT",
        "ALTER TABLE users ADD COLUMN picture TEXT",
        "ALTER TABLE users ADD COLUMN website TEXT",
        "ALTER TABLE users ADD COLUMN gender TEXT",
        "ALTER TABLE users ADD COLUMN birthdate TEXT",
        "ALTER TABLE users ADD COLUMN zoneinfo TEXT",
        "ALTER TABLE users ADD COLUMN locale TEXT",
        "ALTER TABLE users ADD COLUMN phone_number TEXT",
        "ALTER TABLE users ADD COLUMN address TEXT",  # JSON: OIDC Core §5.1.1
        "ALTER TABLE users ADD COLUMN email_verified INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE users ADD COLUMN phone_number_verified INTEGER NOT NULL DEFAULT 0",
        # Browser and admin sessions started before this moment are void: set when a
        # user's sessions are ended (password change or reset, revoke-sessions).
        "ALTER TABLE users ADD COLUMN sessions_valid_after REAL",
    ],
    # 5: OpenID Connect: the built-in OIDC scopes, the ID-token algorithm per client,
    # and what a code and a refresh-token family carry into ID tokens.
    [
        "INSERT OR IGNORE INTO scopes (name, description, is_default, created_at) VALUES"
        " ('openid', 'Sign you in to the application with your account', 0, 0),"
        " ('address', 'Your postal address', 0, 0),"
        " ('phone', 'Your phone number', 0, 0)",
        "ALTER TABLE clients ADD COLUMN id_token_signed_response_alg TEXT NOT NULL DEFAULT 'RS256'",
        "ALTER TABLE authorization_codes ADD COLUMN nonce TEXT",
        "ALTER TABLE authorization_codes ADD COLUMN auth_time REAL",
        "ALTER TABLE authorization_codes ADD COLUMN session_sid TEXT",
        "ALTER TABLE authorization_codes ADD COLUMN claims TEXT",
        "ALTER TABLE refresh_tokens ADD COLUMN auth_time REAL",
        "ALTER TABLE refresh_tokens ADD COLUMN session_sid TEXT",
    ],
    # 6: OpenID Connect logout (RP-Initiated and Back-Channel Logout 1.0): where a
    # client may send the browser after logout, its back-channel endpoint, and the
    # index that finds a browser session's refresh-token families.
    [
        "ALTER TABLE clients ADD COLUMN post_logout_redirect_uris TEXT NOT NULL DEFAULT '[]'",
        "ALTER TABLE clients ADD COLUMN backchannel_logout_uri TEXT",
        "ALTER TABLE clients ADD COLUMN backchannel_logout_session_required"
        " INTEGER NOT NULL DEFAULT 0",
        "CREATE INDEX refresh_tokens_session_sid ON refresh_tokens(session_sid)",
    ],
    # 7: what instances sharing a store share without Redis: facts of the deployment
    # (the issuer when AUTHLY_ISSUER is unset), sessions ("Database sessions": browser,
    # login and admin sessions, pending authorization requests), and a heartbeat per
    # instance (memory rate limits divide their budget by the instances alive).
    [
        """CREATE TABLE deployment (
            name TEXT PRIMARY KEY,
            value TEXT NOT NULL,
            created_at REAL NOT NULL
        )""",
        """CREATE TABLE sessions (
            id TEXT PRIMARY KEY,
            pool TEXT NOT NULL,
            data TEXT NOT NULL,
            expires_at REAL NOT NULL,
            version TEXT NOT NULL
        )""",
        "CREATE INDEX sessions_pool_expiry ON sessions(pool, expires_at)",
        "CREATE INDEX sessions_expiry ON sessions(expires_at)",
        """CREATE TABLE instances (
            id TEXT PRIMARY KEY,
            seen_at REAL NOT NULL
        )""",
    ],
    # 8: client authentication with signed JWTs (RFC 7523 §2.2, OpenID Connect Core §9):
    # a private_key_jwt client's public keys (an inline JWK Set, or the URL it is fetched
    # from), and the secret a client_secret_jwt client's HMAC is keyed with (kept for
    # those clients only; every other secret stays a SHA-256 hash).
    [
        "ALTER TABLE clients ADD COLUMN jwks TEXT",
        "ALTER TABLE clients ADD COLUMN jwks_uri TEXT",
        "ALTER TABLE clients ADD COLUMN jwt_secret TEXT",
    ],
    # 9: pushed authorization requests (RFC 9126 §6): a client whose authorization
    # requests must all be pushed first (the authorization endpoint then takes only
    # request_uri from it).
    [
        "ALTER TABLE clients ADD COLUMN require_pushed_authorization_requests"
        " INTEGER NOT NULL DEFAULT 0",
    ],
    # 10: dynamic client registration (RFC 7591, RFC 7592): the SHA-256 of the
    # registration access token of a client that registered itself (NULL for clients an
    # operator created: they cannot be managed through RFC 7592), and the initial access
    # tokens operators hand out for registration (stored as SHA-256 only).
    [
        "ALTER TABLE clients ADD COLUMN registration_token_hash TEXT",
        """CREATE TABLE initial_access_tokens (
            id TEXT PRIMARY KEY,
            token_hash TEXT NOT NULL UNIQUE,
            description TEXT NOT NULL,
            created_at REAL NOT NULL,
            expires_at REAL,
            max_uses INTEGER,
            uses INTEGER NOT NULL DEFAULT 0,
            created_by TEXT
        )""",
    ],
    # 11: resource indicators (RFC 8707): the registry of protected resources (scopes:
    # a JSON array), and the resources an authorization code or a refresh-token family
    # was granted for (space-separated identifiers; '' = none named: the default
    # audience).
    [
        """CREATE TABLE resources (
            identifier TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            scopes TEXT NOT NULL,
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL
        )""",
        "ALTER TABLE authorization_codes ADD COLUMN resources TEXT NOT NULL DEFAULT ''",
        "ALTER TABLE refresh_tokens ADD COLUMN resources TEXT NOT NULL DEFAULT ''",
    ],
    # 12: DPoP (RFC 9449): the key (JWK SHA-256 thumbprint) a public client's
    # refresh-token family is bound to (§5), the dpop_jkt an authorization code was
    # requested with (§10), and clients that must always send a proof (§5.2).
    [
        "ALTER TABLE refresh_tokens ADD COLUMN dpop_jkt TEXT",
        "ALTER TABLE authorization_codes ADD COLUMN dpop_jkt TEXT",
        "ALTER TABLE clients ADD COLUMN dpop_bound_access_tokens INTEGER NOT NULL DEFAULT 0",
    ],
]


class SchemaTooNew(Exception):
    """Raised when the store was migrated by a newer Authly than this one."""


_WORDS = [
    (re.compile(r"\bREAL\b"), "DOUBLE PRECISION"),
    (re.compile(r"\bINTEGER\b"), "BIGINT"),
]


def for_postgresql(statement: str) -> str:
    """The PostgreSQL text of one migration statement."""
    for pattern, word in _WORDS:
        statement = pattern.sub(word, statement)
    if statement.startswith("INSERT OR IGNORE INTO"):
        statement = "INSERT INTO" + statement[len("INSERT OR IGNORE INTO") :]
        statement += " ON CONFLICT DO NOTHING"
    return statement


def schema_version(conn: Conn) -> int:
    if conn.dialect == "sqlite":
        return int(conn.execute("PRAGMA user_version").fetchone()[0])
    row = conn.execute("SELECT version FROM authly_schema").fetchone()
    return 0 if row is None else int(row[0])


def _check(version: int) -> None:
    if version > len(MIGRATIONS):
        raise SchemaTooNew(
            f"database schema version {version} is newer than this Authly "
            f"({len(MIGRATIONS)}); upgrade Authly"
        )


def migrate(conn: Conn) -> int:
    """Apply every migration newer than the store's version; return the new version."""
    if conn.dialect == "postgresql":
        return _migrate_postgresql(conn)
    conn.begin_write()
    try:
        version = schema_version(conn)
        _check(version)
        for number in range(version + 1, len(MIGRATIONS) + 1):
            for statement in MIGRATIONS[number - 1]:
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {number}")
    except BaseException:
        conn.rollback()
        raise
    conn.commit()
    return len(MIGRATIONS)


def _migrate_postgresql(conn: Conn) -> int:
    conn.execute("SELECT pg_advisory_lock(?)", (MIGRATION_LOCK,))
    try:
        conn.execute("CREATE TABLE IF NOT EXISTS authly_schema (version BIGINT NOT NULL)")
        version = schema_version(conn)
        _check(version)
        for number in range(version + 1, len(MIGRATIONS) + 1):
            conn.begin_write()
            try:
                for statement in MIGRATIONS[number - 1]:
                    conn.execute(for_postgresql(statement))
                conn.execute("DELETE FROM authly_schema")
                conn.execute("INSERT INTO authly_schema (version) VALUES (?)", (number,))
            except BaseException:
                conn.rollback()
                raise
            conn.commit()
    finally:
        conn.execute("SELECT pg_advisory_unlock(?)", (MIGRATION_LOCK,))
    return len(MIGRATIONS)
