"""A private PostgreSQL server for tests and scripts, on a free loopback port.

``PostgresProcess`` runs ``initdb`` into a temporary directory and ``pg_ctl`` on a free
port, the way ``RedisProcess`` runs redis-server: never the machine's shared PostgreSQL
on 5432, which is never touched. ``initdb`` refuses to run as root, and sessions and CI
run as root (DESIGN §1), so when this process is root every PostgreSQL command runs as
the ``postgres`` user through ``runuser`` in a directory that user owns.

The superuser is ``authly`` with password ``PASSWORD``: loopback TCP connections must
give it (scram-sha-256), so URLs carry a real password and masking is tested for real.
``create_database`` hands each test its own empty database; ``stop`` (immediate: the
way a crash looks to clients) and ``start`` again keep the data directory, so a test
can take the database away and bring it back.

Command line, for scripts/multi_instance.sh (``python tests/support/postgres.py ...``):

    start DIR    initdb into DIR (if empty), start on a free port (on the same port again
                 when DIR ran before: DIR/port), print the URL
    stop DIR     stop the server whose data directory is DIR (fast: a clean shut-down)
    kill DIR     stop it immediately, the way a crash looks to clients
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PASSWORD = "authly-test-pw"
USER = "authly"
SHARED_POSTGRES_PORT = 5432
START_SECONDS = 30.0


def _bindir() -> Path | None:
    """Where initdb and pg_ctl live: on PATH, else Debian's versioned directory."""
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).resolve().parent
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), reverse=True)
    return candidates[0].parent if candidates else None


BINDIR = _bindir()
AVAILABLE = BINDIR is not None and (BINDIR / "initdb").exists()


def _as_owner(argv: list[str]) -> list[str]:
    """Run as the ``postgres`` user when we are root (initdb refuses root)."""
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *argv]
    return argv


def _free_port() -> int:
    import socket

    while True:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port != SHARED_POSTGRES_PORT:
            return port


class PostgresProcess:
    """A PostgreSQL cluster of its own in ``directory`` (a new temporary one by default)."""

    def __init__(self, directory: Path | None = None) -> None:
        if not AVAILABLE or BINDIR is None:
            raise RuntimeError("PostgreSQL binaries (initdb, pg_ctl) not found")
        self._own_directory = directory is None
        self.directory = Path(directory or tempfile.mkdtemp(prefix="authly-pg-"))
        self.data = self.directory / "data"
        self.log = self.directory / "postgres.log"
        self.port = _free_port()
        self._bin = BINDIR
        self._databases = 0

    # -- life cycle ----------------------------------------------------------------------

    def init(self) -> None:
        """initdb (once): the ``authly`` superuser, password auth on TCP."""
        if (self.data / "PG_VERSION").exists():
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        pwfile = self.directory / "pwfile"
        pwfile.write_text(PASSWORD + "\n", encoding="utf-8")
        if os.geteuid() == 0:
            shutil.chown(self.directory, "postgres", "postgres")
            shutil.chown(pwfile, "postgres", "postgres")
        self._run(
            str(self._bin / "initdb"),
            "-D",
            str(self.data),
            "-U",
            USER,
            f"--pwfile={pwfile}",
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
            "--no-sync",
            "-E",
            "UTF8",
            "--locale=C",
        )

    def start(self) -> str:
        """Start on ``self.port`` and wait until it accepts connections; return the URL."""
        self.init()
        options = (
            f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1"
            # fsync off: fast, and a killed server still keeps every commit (the OS has
            # the WAL); synchronous_commit stays on, or a crash would lose commits.
            " -c fsync=off -c full_page_writes=off"
            " -c max_connections=200"
        )
        self._run(
            str(self._bin / "pg_ctl"),
            "-D",
            str(self.data),
            "-l",
            str(self.log),
            "-o",
            options,
            "-w",
            "-t",
            str(int(START_SECONDS)),
            "start",
        )
        return self.url()

    def stop(self, mode: str = "immediate") -> None:
        """Stop the server (``immediate``: no clean shut-down, as a crash looks)."""
        if (self.data / "postmaster.pid").exists():
            self._run(str(self._bin / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop")

    def close(self) -> None:
        """Stop and delete the data directory (when this object created it)."""
        with contextlib.suppress(subprocess.CalledProcessError, OSError):
            self.stop()
        if self._own_directory:
            shutil.rmtree(self.directory, ignore_errors=True)

    # -- databases -----------------------------------------------------------------------

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{USER}:{PASSWORD}@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str | None = None) -> str:
        """A new empty database; return its URL."""
        import psycopg

        self._databases += 1
        name = name or f"t{os.getpid()}_{self._databases}_{int(time.time() * 1000) % 100000}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def _run(self, *argv: str) -> None:
        subprocess.run(
            _as_owner(list(argv)),
            check=True,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            timeout=START_SECONDS + 10,
            cwd=self.directory if os.geteuid() != 0 else "/",
        )


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] not in ("start", "stop", "kill"):
        print(__doc__, file=sys.stderr)
        return 2
    server = PostgresProcess(Path(argv[1]))
    port_file = server.directory / "port"
    if argv[0] == "start":
        if port_file.exists():  # started before: clients know this port
            server.port = int(port_file.read_text(encoding="utf-8"))
        url = server.start()
        port_file.write_text(f"{server.port}\n", encoding="utf-8")
        print(url)
    else:
        server.stop("fast" if argv[0] == "stop" else "immediate")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
