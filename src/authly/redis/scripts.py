"""The Lua scripts the actor loads once (SCRIPT LOAD) and runs by EVALSHA: one atomic
step each (redis/lua/*.lua)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from importlib import resources

SCRIPTS = (
    "sliding_window",
    "merge_window",
    "session_set",
    "session_add",
    "session_take",
    "heartbeat",
)


@dataclass(frozen=True)
class Script:
    name: str
    source: str
    sha: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "sha", hashlib.sha1(self.source.encode()).hexdigest())  # noqa: S324


def load_script(name: str) -> Script:
    return Script(name, resources.files("authly.redis").joinpath(f"lua/{name}.lua").read_text())
