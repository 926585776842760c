"""The one role Authly knows: administrators, and the scope that carries it."""

from __future__ import annotations

# Granted only to admin users through first-party clients; lets a token use the admin API.
ADMIN_SCOPE = "admin"
