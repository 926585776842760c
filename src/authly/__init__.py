"""Authly: a self-hosted OAuth 2.1 authorization server on Trio (OpenID Connect planned)."""

__version__ = "0.1.0"

__all__ = ["__version__"]
