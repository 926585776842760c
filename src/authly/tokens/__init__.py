"""Tokens domain: signing keys, JWT access tokens, rotating refresh tokens."""
