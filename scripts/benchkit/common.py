"""What the scripts share beyond the test-process helpers: the Authly server a script
starts, argument types, statistics, the machine's description and plain/Markdown tables."""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import platform
import secrets
from collections.abc import Callable, Sequence
from pathlib import Path

from tests.support.processes import ServerProcess, server_env

# Argon2 made cheap (time cost 1, 1 MiB): for runs that measure something else.
CHEAP_HASH = {"AUTHLY_PASSWORD_HASH_TIME_COST": "1", "AUTHLY_PASSWORD_HASH_MEMORY_KIB": "1024"}


class ScriptServer(ServerProcess):
    """``python -m authly serve`` started by a script: a free port, SQLite in ``workdir``
    (NAME.db), the issuer at its own URL, an admin with a random password; the caller's
    AUTHLY_* variables are dropped unless ``inherit_authly`` (``settings`` win anyway)."""

    username = "admin"

    def __init__(
        self,
        workdir: Path,
        name: str = "authly",
        *,
        settings: dict[str, str],
        inherit_authly: bool = False,
        host: str = "127.0.0.1",
    ) -> None:
        super().__init__(workdir, name=name, host=host)
        self.password = secrets.token_urlsafe(18)
        self.db_path = workdir / f"{name}.db"
        base = {
            "AUTHLY_DATABASE_URL": f"sqlite:///{self.db_path}",
            "AUTHLY_ISSUER": self.base_url,
            "AUTHLY_ADMIN_USERNAME": self.username,
            "AUTHLY_ADMIN_PASSWORD": self.password,
        }
        self.env = server_env(inherit_authly=inherit_authly, **(base | settings))


def percentile(values: Sequence[float], p: float) -> float | None:
    """The nearest-rank percentile (None for no values)."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(1, math.ceil(p / 100 * len(ordered))) - 1]


def int_list(maximum: int | None = None) -> Callable[[str], list[int]]:
    """An argparse type: comma-separated whole numbers, each at least 1 (and at most
    ``maximum``)."""

    def parse(text: str) -> list[int]:
        try:
            values = [int(p) for p in text.split(",") if p.strip()]
        except ValueError:
            raise argparse.ArgumentTypeError("expected comma-separated whole numbers") from None
        if not values or any(v < 1 or (maximum is not None and v > maximum) for v in values):
            bounds = ">= 1" if maximum is None else f"in 1..{maximum}"
            raise argparse.ArgumentTypeError(f"expected whole numbers {bounds}")
        return values

    return parse


def choice_list(allowed: Sequence[str]) -> Callable[[str], list[str]]:
    """An argparse type: a comma-separated subset of ``allowed``."""

    def parse(text: str) -> list[str]:
        values = [p.strip() for p in text.split(",") if p.strip()]
        unknown = [v for v in values if v not in allowed]
        if unknown or not values:
            raise argparse.ArgumentTypeError(f"unknown {unknown}; choose from {','.join(allowed)}")
        return values

    return parse


def machine() -> dict[str, str]:
    """What a benchmark header says about the machine: cores, CPU, OS, Python, load."""
    model = "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    try:
        nproc = len(os.sched_getaffinity(0))
    except AttributeError:
        nproc = os.cpu_count() or 0
    load = "?"
    with contextlib.suppress(OSError):
        load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    return {
        "nproc": str(nproc),
        "cpu": model,
        "python": platform.python_version(),
        "os": f"{platform.system()} {platform.release()}",
        "load": load,
    }


def table(headers: Sequence[str], rows: list[list[str]], markdown: bool) -> list[str]:
    """The lines of a table: Markdown, or plain text in aligned columns (first column
    left-aligned, the others right-aligned, as in the Markdown)."""
    if markdown:
        lines = ["| " + " | ".join(headers) + " |"]
        lines.append("|" + "|".join(["---"] + ["---:"] * (len(headers) - 1)) + "|")
        return lines + ["| " + " | ".join(c.replace("|", "\\|") for c in r) + " |" for r in rows]
    widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(headers)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        )

    return [line(headers), "  ".join("-" * w for w in widths), *(line(r) for r in rows)]


def fmt_ms(seconds: float | None) -> str:
    """Milliseconds with three significant-ish digits ("-" for None)."""
    if seconds is None:
        return "-"
    value = seconds * 1000
    return f"{value:.3f}" if value < 1 else f"{value:.2f}" if value < 100 else f"{value:.0f}"
