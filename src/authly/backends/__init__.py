"""Swappable backends: protocols, memory implementations and the slots holding them.

Nothing here imports Redis; the Redis implementations (backends/redis.py) are chosen by
the supervisor only.
"""

from authly.backends.protocols import Cache, Decision, RateLimiter, SessionStore
from authly.backends.slot import CacheSlot, RateLimiterSlot, SessionSlot, Slot

__all__ = [
    "Cache",
    "CacheSlot",
    "Decision",
    "RateLimiter",
    "RateLimiterSlot",
    "SessionSlot",
    "SessionStore",
    "Slot",
]
