"""What the supervisor records about the backends: each switch, and the last error seen
(shown by /health and /status)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any


def iso(when: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(when))


@dataclass(frozen=True)
class Switch:
    time: float
    feature: str
    from_backend: str
    to_backend: str
    reason: str

    def as_json(self) -> dict[str, Any]:
        return {
            "time": iso(self.time),
            "feature": self.feature,
            "from": self.from_backend,
            "to": self.to_backend,
            "reason": self.reason,
        }


@dataclass(frozen=True)
class LastError:
    """The last failure seen (by a probe or a request), shown in /health."""

    time: float
    error: str

    def as_json(self) -> dict[str, Any]:
        return {"time": iso(self.time), "error": self.error}
