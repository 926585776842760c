"""Authly: a self-hosted OAuth 2.1 + OpenID Connect authorization server on Trio."""

__version__ = "0.1.0"

__all__ = ["__version__"]
