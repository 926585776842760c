"""What scripts/bench_core.py benchmarks when it starts the server itself: one Authly
server, or ``--instances N`` of them behind one Redis, on SQLite or PostgreSQL.

- ``--database sqlite`` (default): the SQLite file in the first instance's temporary
  directory; every instance opens that same file.
- ``--database postgresql``: a private PostgreSQL (tests/support/postgres.py: initdb into
  a temporary directory, pg_ctl on a free port; never the machine's shared server on
  5432) with one new database; stopped and deleted by ``cleanup``.
- ``--instances N`` (N > 1): a password-protected redis-server of its own
  (AUTHLY_REDIS_URL with AUTHLY_REDIS_RATE_LIMIT, _CACHE and _SESSION true), one
  AUTHLY_ISSUER for all (the first instance's URL), the same admin password and
  bench-svc secret; the load generator spreads its connections over the instances'
  ports round robin (``targets``).

``cpu_seconds`` is the CPU of every instance's process tree; ``store_cpu_seconds`` that
of the PostgreSQL server and the redis-server (None when neither runs), so the table
does not count them as other people's load.
"""

from __future__ import annotations

import contextlib
import secrets
import shlex

import trio
from tests.support.postgres import PostgresProcess
from tests.support.processes import RedisProcess

from authly.store.urls import masked_database_url
from benchkit.core_server import Server, proc_tree_cpu
from benchkit.httpclient import Target

DATABASE_NAME = "authly_bench"


class Fleet:
    """One or more benchmarked servers on one store (and one Redis when more than one).

    Nothing starts before ``run``; ``finish`` stops the servers, ``cleanup`` stops and
    deletes everything else (PostgreSQL, Redis, the temporary directories): call both
    in a ``finally``."""

    def __init__(
        self,
        workers: int,
        host: str,
        launcher: str,
        with_clients: bool,
        *,
        database: str = "sqlite",
        instances: int = 1,
    ) -> None:
        self.database = database
        self.postgres = PostgresProcess() if database == "postgresql" else None
        self.redis = RedisProcess(password=secrets.token_urlsafe(16)) if instances > 1 else None
        self.password = secrets.token_urlsafe(18)
        self.client_secret = secrets.token_urlsafe(32)
        first = Server(workers, host, launcher, with_clients, password=self.password)
        self.servers = [first]
        self.store_url = first.store  # sqlite:///<first's temp dir>/bench.db until run()
        self.shared: dict[str, str] = {}
        if instances > 1:
            assert self.redis is not None
            self.shared = {
                "AUTHLY_ISSUER": first.base_url,
                "AUTHLY_DATABASE_URL": self.store_url,
                "AUTHLY_REDIS_URL": self.redis.url,
                "AUTHLY_REDIS_RATE_LIMIT": "true",
                "AUTHLY_REDIS_CACHE": "true",
                "AUTHLY_REDIS_SESSION": "true",
            }
            for _ in range(instances - 1):
                self.servers.append(Server(workers, host, launcher, password=self.password))
        for server in self.servers:
            server.client_secret = self.client_secret
        self.pg_version = ""
        self.stop_note = ""

    # -- what the script and the report read ----------------------------------------------

    @property
    def primary(self) -> Server:
        return self.servers[0]

    @property
    def target(self) -> Target:
        return self.primary.target

    @property
    def targets(self) -> tuple[Target, ...]:
        return tuple(s.target for s in self.servers)

    @property
    def username(self) -> str:
        return self.primary.username

    @property
    def workers(self) -> int:
        return self.primary.workers

    @property
    def launcher(self) -> str:
        return self.primary.launcher

    @property
    def version(self) -> str:
        return self.primary.version

    @property
    def inherited(self) -> list[str]:
        return self.primary.inherited

    @property
    def instances(self) -> int:
        return len(self.servers)

    def command(self) -> list[str]:
        return self.primary.command()

    def label(self) -> str:
        """Short: the store, and the instances behind Redis when more than one."""
        store = "SQLite" if self.database == "sqlite" else f"PostgreSQL {self.pg_version}".strip()
        if self.redis is None:
            return f"{store}, one instance"
        return f"{store}, {self.instances} instances behind one Redis"

    def describe_store(self) -> str:
        """The store line of the report (the password masked)."""
        url = masked_database_url(self.store_url)
        if self.database == "postgresql":
            version = f"PostgreSQL {self.pg_version}" if self.pg_version else "PostgreSQL"
            return (
                f"{version} at {url}, a private server this script started "
                "(tests/support/postgres.py: initdb in a temp dir, pg_ctl on a free port, "
                "fsync=off, full_page_writes=off, synchronous_commit on), pool "
                "AUTHLY_DATABASE_POOL_SIZE per instance (default 10 unless inherited)"
            )
        return f"SQLite {url} (WAL, synchronous=NORMAL) in a temp dir"

    def describe_fleet(self) -> str | None:
        """The Redis/instances line of the report (None for one instance)."""
        if self.redis is None:
            return None
        ports = ", ".join(str(s.port) for s in self.servers)
        return (
            f"{self.instances} instances (ports {ports}) on that one store, behind one "
            f"password-protected redis-server of their own ({masked_redis(self.redis.url)}; "
            "AUTHLY_REDIS_RATE_LIMIT, AUTHLY_REDIS_CACHE, AUTHLY_REDIS_SESSION = true), "
            f"one AUTHLY_ISSUER={self.shared['AUTHLY_ISSUER']}; each load-generator "
            "connection goes to the next instance round robin (set-up and requests of a "
            "connection stay on its instance); req/s is the whole fleet's, server CPU the "
            "sum over the instances"
        )

    # -- life cycle -------------------------------------------------------------------------

    def run(self) -> None:
        """Start the store, Redis and the servers (the first alone, so it migrates a new
        store before the others open it); SystemExit when one does not become healthy."""
        if self.postgres is not None:
            self.postgres.start()
            self.store_url = self.postgres.create_database(DATABASE_NAME)
            self.pg_version = _server_version(self.store_url)
        if self.redis is not None:
            trio.run(self.redis.start)
        settings = dict(self.shared)
        if self.postgres is not None or settings:
            settings["AUTHLY_DATABASE_URL"] = self.store_url
        for server in self.servers:
            server.env.update(settings)
            server.store = server.env["AUTHLY_DATABASE_URL"]
        self.primary.run()
        for server in self.servers[1:]:
            server.start()
        for server in self.servers[1:]:
            server.run_started()

    def commands(self) -> list[str]:
        lines = [shlex.join(s.command()) for s in self.servers]
        if self.postgres is not None:
            lines.append(f"PostgreSQL in {self.postgres.directory} on port {self.postgres.port}")
        if self.redis is not None:
            lines.append(f"redis-server on 127.0.0.1:{self.redis.port}")
        return lines

    def exited(self) -> str | None:
        """Which instance exited (and how), or None while all run."""
        for i, server in enumerate(self.servers, 1):
            if server.proc is not None and server.proc.poll() is not None:
                name = "the server" if len(self.servers) == 1 else f"instance {i}"
                return f"{name} exited with {server.proc.returncode}"
        return None

    def cpu_seconds(self) -> float | None:
        total = 0.0
        for server in self.servers:
            cpu = server.cpu_seconds()
            if cpu is None:
                return None
            total += cpu
        return total

    def store_cpu_seconds(self) -> float | None:
        pids = []
        if self.postgres is not None:
            with contextlib.suppress(OSError, ValueError, IndexError):
                pid_file = self.postgres.data / "postmaster.pid"
                pids.append(int(pid_file.read_text().split()[0]))
        if self.redis is not None and self.redis.proc is not None:
            pids.append(self.redis.proc.pid)
        return sum(proc_tree_cpu(pid) for pid in pids) if pids else None

    def finish(self) -> str:
        """Stop the servers (once) and say how that went."""
        if not self.stop_note:
            notes = [s.finish() for s in self.servers]
            if len(notes) == 1:
                self.stop_note = notes[0]
            elif len(set(notes)) == 1:
                self.stop_note = f"(all {len(notes)} instances) {notes[0]}"
            else:
                self.stop_note = "; ".join(f"instance {i}: {n}" for i, n in enumerate(notes, 1))
        return self.stop_note

    def log_problems(self) -> list[str]:
        return [line for s in self.servers for line in s.log_problems()]

    def cleanup(self) -> None:
        """Stop Redis and PostgreSQL and delete their and the servers' directories."""
        for server in self.servers:
            if server.proc is not None and server.proc.poll() is None:
                server.kill()
        if self.redis is not None:
            self.redis.close()
        if self.postgres is not None:
            self.postgres.close()
        for server in self.servers:
            server.cleanup()


def masked_redis(url: str) -> str:
    """``redis://:***@host:port/db`` (the password hidden)."""
    scheme, rest = url.split("://", 1)
    if "@" not in rest:
        return url
    return f"{scheme}://:***@{rest.rsplit('@', 1)[1]}"


def _server_version(url: str) -> str:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute("SHOW server_version").fetchone()
    return str(row[0]).split()[0] if row else ""
