"""The server scripts/bench_core.py starts, and the CPU accounting of its table.

``python -m authly serve --workers N`` (or ``hypercorn -k trio -w N``) on a free port,
SQLite in a temporary directory, AUTHLY_LOGIN_RATE_LIMIT=1000000 so the login bench is
not rate limited, AUTHLY_TOKEN_RATE_LIMIT=10000000 so the token endpoint's per-client and
per-IP budget is not either; AUTHLY_* of the caller are passed on (and listed in the
report). For the OAuth scenarios the clients bench-svc and bench-spa are registered in
the SQLite file before it starts.
"""

from __future__ import annotations

import os
import secrets
import sys
import tempfile
from pathlib import Path

from tests.support.processes import ServerError, serve_argv
from tests.support.store import register_client

from benchkit.common import ScriptServer
from benchkit.core_code_flow import SPA_CLIENT_ID, SPA_REDIRECT_URI, SPA_SCOPE
from benchkit.core_requests import SERVICE_CLIENT_ID
from benchkit.httpclient import Target

TOKEN_RATE_LIMIT = "10000000"  # the maximum AUTHLY_TOKEN_RATE_LIMIT accepts


def machine_busy_seconds() -> float | None:
    """CPU seconds all cores spent busy (not idle or iowait) since boot, from /proc/stat."""
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    except (OSError, IndexError):
        return None
    ticks = [int(f) for f in fields]
    busy = sum(ticks) - ticks[3] - (ticks[4] if len(ticks) > 4 else 0)
    return busy / os.sysconf("SC_CLK_TCK")


def proc_tree_cpu(root: int) -> float:
    """utime + stime (s) of ``root`` and all its descendants, from /proc."""
    stats: dict[int, tuple[int, float]] = {}
    tick = os.sysconf("SC_CLK_TCK")
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            text = Path(entry.path, "stat").read_text()
        except OSError:
            continue
        fields = text.rsplit(")", 1)[1].split()
        stats[int(entry.name)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / tick)
    wanted = {root}
    changed = True
    while changed:
        changed = False
        for pid, (ppid, _) in stats.items():
            if ppid in wanted and pid not in wanted:
                wanted.add(pid)
                changed = True
    return sum(stats[pid][1] for pid in wanted if pid in stats)


class Server(ScriptServer):
    """The benchmarked server, in a temporary directory removed by ``cleanup``."""

    def __init__(self, workers: int, host: str, launcher: str, with_clients: bool = False) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix="authly-bench-")
        settings = {
            "AUTHLY_LOGIN_RATE_LIMIT": "1000000",
            "AUTHLY_TOKEN_RATE_LIMIT": TOKEN_RATE_LIMIT,
            "AUTHLY_LOG_LEVEL": "WARNING",
        }
        super().__init__(
            Path(self._tmp.name), "bench", settings=settings, inherit_authly=True, host=host
        )
        self.workers = workers
        self.launcher = launcher
        self.with_clients = with_clients  # register bench-svc and bench-spa before start
        self.client_secret = secrets.token_urlsafe(32)
        self.version = "?"
        self.inherited = sorted(
            k
            for k in os.environ
            if k.startswith("AUTHLY_") and k not in ("AUTHLY_HOST", "AUTHLY_PORT")
        )
        self.stop_note = ""
        self.argv = self.command()

    @property
    def target(self) -> Target:
        return Target(self.host, self.port)

    def command(self) -> list[str]:
        if self.launcher == "hypercorn":
            # `authly.app:create_app()`: hypercorn evals the name in the module's
            # namespace, which never reaches the lazy module __getattr__ for `app`.
            bind = f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"
            hypercorn = [sys.executable, "-m", "hypercorn", "-k", "trio", "-w", str(self.workers)]
            return [*hypercorn, "-b", bind, "--graceful-timeout", "1", "authly.app:create_app()"]
        return serve_argv(self.port, "--workers", str(self.workers), host=self.host)

    def register_clients(self) -> None:
        """Create the schema and the OAuth scenarios' clients in the server's SQLite file
        (the server migrates it again at start: nothing left to do)."""
        register_client(
            self.db_path,
            SERVICE_CLIENT_ID,
            secret=self.client_secret,
            auth_method="client_secret_basic",
            grant_types=("client_credentials",),
            scopes=tuple(SPA_SCOPE.split()),
        )
        register_client(
            self.db_path,
            SPA_CLIENT_ID,
            redirect_uris=(SPA_REDIRECT_URI,),
            scopes=tuple(SPA_SCOPE.split()),
            first_party=True,
        )

    def run(self) -> None:
        """Start it and wait until it is healthy; SystemExit when it does not get there."""
        if self.with_clients:
            self.register_clients()
        self.start()
        try:
            health = self.wait_healthy(timeout=60.0)
        except ServerError as exc:
            self.kill()
            raise SystemExit(f"bench: {exc}") from None
        self.version = str(health.get("version", "?"))

    def cpu_seconds(self) -> float | None:
        if self.proc is None or self.proc.poll() is not None:
            return None
        return proc_tree_cpu(self.proc.pid)

    def finish(self) -> str:
        """Stop it (once) and say how that went."""
        if self.proc is not None and not self.stop_note:
            self.stop_note = self.shutdown()
        return self.stop_note

    def cleanup(self) -> None:
        self._tmp.cleanup()
