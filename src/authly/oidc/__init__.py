"""OpenID Connect domain: ID tokens, claims, discovery (framework-neutral; no Quart, no Redis)."""
