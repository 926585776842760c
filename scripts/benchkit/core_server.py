"""The server scripts/bench_core.py starts, and the CPU accounting of its table.

``python -m authly serve --workers N`` (or ``hypercorn -k trio -w N``) on a free port,
SQLite in a temporary directory, AUTHLY_LOGIN_RATE_LIMIT=1000000 so the login bench is
not rate limited, AUTHLY_TOKEN_RATE_LIMIT=10000000 so the token endpoint's per-client and
per-IP budget is not either; AUTHLY_* of the caller are passed on (and listed in the
report). For the OAuth and OIDC scenarios the clients bench-svc, bench-spa and bench-rp
are registered in the SQLite file before it starts.

``Ceiling`` is the yardstick of the static documents (the ``ceiling`` scenario): the bare
QuartTrio app of ceiling_app.py on the same hypercorn trio worker, in its own process,
answering the bytes the benchmarked server answered for JWKS and discovery.
"""

from __future__ import annotations

import http.client
import json
import os
import secrets
import sys
import tempfile
from pathlib import Path

from tests.support.processes import ServerError, ServerProcess, serve_argv, server_env
from tests.support.store import register_client

from benchkit.common import ScriptServer
from benchkit.core_code_flow import SPA_CLIENT_ID, SPA_REDIRECT_URI, SPA_SCOPE
from benchkit.core_requests import (
    DISCOVERY_PATH,
    JWKS_PATH,
    RP_CLIENT_ID,
    RP_SCOPE,
    SERVICE_CLIENT_ID,
)
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


def hypercorn_argv(host: str, port: int, workers: int, app: str) -> list[str]:
    """``python -m hypercorn -k trio`` as `authly serve` configures it (cli/serve.py)."""
    bind = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    argv = [sys.executable, "-m", "hypercorn", "-k", "trio", "-w", str(workers), "-b", bind]
    return [*argv, "--graceful-timeout", "1", "--keep-alive", "5", "--read-timeout", "30", app]


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


class Measured(ServerProcess):
    """A server a bench_core table measures: its address, the CPU of its process tree,
    one stop, its temporary directory (``_tmp``) removed by ``cleanup``."""

    _tmp: tempfile.TemporaryDirectory[str]
    stop_note = ""

    @property
    def target(self) -> Target:
        return Target(self.host, self.port)

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


class Server(Measured, ScriptServer):
    """The benchmarked server, in a temporary directory removed by ``cleanup``.

    By default its store is SQLite in that directory and its issuer its own URL;
    ``settings`` (AUTHLY_* variables) win over those and over the inherited ones: the
    instances of a fleet (core_fleet.py) share a store, an issuer and Redis that way, and
    ``password`` (the admin's) and ``client_secret`` (bench-svc's)."""

    def __init__(
        self,
        workers: int,
        host: str,
        launcher: str,
        with_clients: bool = False,
        *,
        settings: dict[str, str] | None = None,
        password: str | None = None,
        client_secret: str | None = None,
    ) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix="authly-bench-")
        base = {
            "AUTHLY_LOGIN_RATE_LIMIT": "1000000",
            "AUTHLY_TOKEN_RATE_LIMIT": TOKEN_RATE_LIMIT,
            "AUTHLY_LOG_LEVEL": "WARNING",
        }
        if password is not None:
            base["AUTHLY_ADMIN_PASSWORD"] = password
        super().__init__(
            Path(self._tmp.name),
            "bench",
            settings=base | (settings or {}),
            inherit_authly=True,
            host=host,
        )
        if password is not None:
            self.password = password
        self.store = self.env["AUTHLY_DATABASE_URL"]  # sqlite:///... or postgresql://...
        self.workers = workers
        self.launcher = launcher
        self.with_clients = with_clients  # register bench-svc, -spa and -rp before start
        self.client_secret = client_secret or secrets.token_urlsafe(32)
        self.version = "?"
        self.inherited = sorted(
            k
            for k in os.environ
            if k.startswith("AUTHLY_") and k not in ("AUTHLY_HOST", "AUTHLY_PORT")
        )
        self.argv = self.command()

    def command(self) -> list[str]:
        if self.launcher == "hypercorn":
            # `authly.app:create_app()`: hypercorn evals the name in the module's
            # namespace, which never reaches the lazy module __getattr__ for `app`.
            return hypercorn_argv(self.host, self.port, self.workers, "authly.app:create_app()")
        return serve_argv(self.port, "--workers", str(self.workers), host=self.host)

    def register_clients(self) -> None:
        """Create the schema and the OAuth scenarios' clients in the server's store (its
        SQLite file or PostgreSQL database; the server migrates it again at start:
        nothing left to do)."""
        store = self.store  # register_client takes either URL
        register_client(
            store,
            SERVICE_CLIENT_ID,
            secret=self.client_secret,
            auth_method="client_secret_basic",
            grant_types=("client_credentials",),
            scopes=tuple(SPA_SCOPE.split()),
        )
        register_client(
            store,
            SPA_CLIENT_ID,
            redirect_uris=(SPA_REDIRECT_URI,),
            scopes=tuple(SPA_SCOPE.split()),
            first_party=True,
        )
        register_client(
            store,
            RP_CLIENT_ID,
            redirect_uris=(SPA_REDIRECT_URI,),
            grant_types=("authorization_code", "refresh_token", "password"),
            scopes=tuple(RP_SCOPE.split()),
            first_party=True,
        )

    def run(self) -> None:
        """Start it and wait until it is healthy; SystemExit when it does not get there."""
        if self.with_clients:
            self.register_clients()
        self.start()
        self.run_started()

    def run_started(self) -> None:
        """Wait until it (started) is healthy; SystemExit when it does not get there."""
        try:
            health = self.wait_healthy(timeout=60.0)
        except ServerError as exc:
            self.kill()
            raise SystemExit(f"bench: {exc}") from None
        self.version = str(health.get("version", "?"))


class Ceiling(Measured):
    """The bare QuartTrio app of ceiling_app.py under ``hypercorn -k trio -w 1``, in a
    temporary directory removed by ``cleanup``."""

    def __init__(self, host: str) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix="authly-ceiling-")
        workdir = Path(self._tmp.name)
        super().__init__(workdir, name="ceiling", host=host)
        self.docs_path = workdir / "documents.json"
        scripts = str(Path(__file__).resolve().parents[1])
        env = server_env(BENCH_CEILING_FILE=str(self.docs_path))
        env["PYTHONPATH"] = os.pathsep.join([scripts, env["PYTHONPATH"]])
        self.env = env
        self.argv = hypercorn_argv(host, self.port, 1, "benchkit.ceiling_app:app")
        self.sizes: dict[str, int] = {}  # path -> body bytes

    def copy_documents(self, source: Target) -> None:
        """GET JWKS and discovery from ``source``: what the bare app will answer."""
        docs = {}
        for path in (JWKS_PATH, DISCOVERY_PATH):
            conn = http.client.HTTPConnection(source.host, source.port, timeout=10)
            try:
                conn.request("GET", path)
                response = conn.getresponse()
                body = response.read()
            finally:
                conn.close()
            if response.status != 200:
                raise SystemExit(f"bench: ceiling: {path} answered HTTP {response.status}")
            self.sizes[path] = len(body)
            docs[path] = {
                "body": body.decode("utf-8"),
                "content_type": response.getheader("Content-Type", "application/json"),
                "cache_control": response.getheader("Cache-Control"),
            }
        self.docs_path.write_text(json.dumps(docs))

    def run(self, source: Target) -> None:
        """Copy the documents, start it and wait until it is healthy (or SystemExit)."""
        self.copy_documents(source)
        self.start()
        try:
            self.wait_healthy(timeout=30.0)
        except ServerError as exc:
            self.kill()
            raise SystemExit(f"bench: {exc}") from None
