"""Users domain: password hashing and authentication (no Quart, no Redis)."""
