"""What the Redis actor reports about its own work, for whoever measures it.

The actor calls an ``RedisObserver`` (every method a no-op here); ``authly.metrics``
supplies one that feeds Prometheus. The actor never imports the metrics (they sit above
it), and it calls nothing else back: the observer only counts.

Error kinds (``ERROR_KINDS``, the label values of ``authly_redis_errors_total{kind}``),
one per failed call, counted once, as the caller saw it:

- ``timeout``: no reply within the deadline (the caller's op timeout, the actor's own
  pipeline deadline, or redis-py's connect timeout) — e.g. a paused or overloaded Redis;
- ``connection``: the connection failed or was refused (Redis down, restarted, TLS refused);
- ``auth``: Redis refused the credentials or the permission (``WRONGPASS``, ``NOAUTH``,
  ``NOPERM``, or an authentication failure while connecting);
- ``unavailable``: Redis answered but will not serve now (``LOADING``, ``MASTERDOWN``,
  ``READONLY``, ``MISCONF``, ``OOM``, ``BUSY``);
- ``command``: an error reply to one command (a bug or bad data, not an outage);
- ``overload``: the actor's request queue was full, the call was refused at once;
- ``other``: anything else (the client not running, an unexpected redis-py error).
"""

from __future__ import annotations

from collections.abc import Sequence

ERROR_KINDS = ("timeout", "connection", "auth", "unavailable", "command", "overload", "other")


class RedisObserver:
    """Hooks the actor calls; override the ones you need. Operation names are the
    commands' names in lower case (``get``, ``evalsha``, ``script``...)."""

    def command(self, operation: str) -> None:
        """One command is about to be sent (inside a pipeline)."""

    def pipeline(self, size: int) -> None:
        """A pipeline of ``size`` commands is about to be sent."""

    def replied(self, operations: Sequence[str], seconds: float) -> None:
        """The reply to a pipeline of ``operations`` arrived ``seconds`` after it was sent
        (each command in it waited that long for its reply)."""

    def error(self, kind: str) -> None:
        """A call failed; ``kind`` is one of ``ERROR_KINDS``."""


__all__ = ["ERROR_KINDS", "RedisObserver"]
