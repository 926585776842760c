"""`authly admin db migrate|export|import` as real processes: JSON lines on stdout,
import from stdin and from --file, refusals as one line, no password printed."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.e2e.server import authly_env, run_cli

pytestmark = pytest.mark.e2e


def _env(tmp_path: Path, name: str) -> dict[str, str]:
    return authly_env(tmp_path / name)


def _rows(stdout: str) -> list[str]:
    lines = stdout.splitlines()
    assert json.loads(lines[0])["authly_export"] == 1
    assert "authly_export_end" in json.loads(lines[-1])
    return lines[1:]


def _export(tmp_path: Path, name: str) -> list[str]:
    result = run_cli(("admin", "db", "export"), _env(tmp_path, name), tmp_path)
    assert result.returncode == 0, result
    assert "exported from" in result.stderr
    return _rows(result.stdout)


def _one_line(stderr: str) -> str:
    assert stderr.count("\n") == 1, stderr
    assert "Traceback" not in stderr
    return stderr


def test_export_import_by_stdin_and_file(tmp_path: Path) -> None:
    created = run_cli(
        ("admin", "user", "create", "--username", "alice", "--password-stdin",
         "--name", "Alice Liddell"),
        _env(tmp_path, "a.db"), tmp_path, stdin="alice-password-1",
    )  # fmt: skip
    assert created.returncode == 0, created
    migrated = run_cli(("admin", "db", "migrate"), _env(tmp_path, "a.db"), tmp_path)
    assert migrated.returncode == 0, migrated
    assert "schema version" in migrated.stdout

    dumped = run_cli(("admin", "db", "export"), _env(tmp_path, "a.db"), tmp_path)
    assert dumped.returncode == 0, dumped
    rows = _rows(dumped.stdout)
    assert any('"username":"alice"' in row for row in rows)

    # Import from stdin, and from a file written by export --file (owner-only).
    into_b = run_cli(
        ("admin", "db", "import"), _env(tmp_path, "b.db"), tmp_path, stdin=dumped.stdout
    )
    assert into_b.returncode == 0, into_b
    assert "imported into" in into_b.stdout
    dump_file = tmp_path / "dump.jsonl"
    written = run_cli(
        ("admin", "db", "export", "--file", str(dump_file)), _env(tmp_path, "a.db"), tmp_path
    )
    assert written.returncode == 0, written
    assert written.stdout == ""
    assert dump_file.stat().st_mode & 0o077 == 0
    into_c = run_cli(
        ("admin", "db", "import", "--file", str(dump_file)), _env(tmp_path, "c.db"), tmp_path
    )
    assert into_c.returncode == 0, into_c
    assert _export(tmp_path, "b.db") == rows
    assert _export(tmp_path, "c.db") == rows

    # A second import into b is refused (b has users) and changes nothing; --merge
    # skips the rows that are already there.
    again = run_cli(
        ("admin", "db", "import"), _env(tmp_path, "b.db"), tmp_path, stdin=dumped.stdout
    )
    assert again.returncode == 1
    line = _one_line(again.stderr)
    assert "not empty" in line
    assert "--merge" in line
    assert _export(tmp_path, "b.db") == rows
    merged = run_cli(
        ("admin", "db", "import", "--merge"), _env(tmp_path, "b.db"), tmp_path,
        stdin=dumped.stdout,
    )  # fmt: skip
    assert merged.returncode == 0, merged
    assert "skipped" in merged.stdout

    # A corrupt line: refused with its line number, nothing written.
    lines = dumped.stdout.splitlines()
    lines.insert(2, "{not json")
    broken = run_cli(
        ("admin", "db", "import"), _env(tmp_path, "d.db"), tmp_path, stdin="\n".join(lines)
    )
    assert broken.returncode == 1
    assert "line 3" in _one_line(broken.stderr)
    assert not any('"table":"users"' in row for row in _export(tmp_path, "d.db"))

    # Exporting a SQLite file that does not exist does not create an empty one.
    missing = run_cli(("admin", "db", "export"), _env(tmp_path, "typo.db"), tmp_path)
    assert missing.returncode == 1
    assert "no store" in _one_line(missing.stderr)
    assert not (tmp_path / "typo.db").exists()


def test_help_documents_the_options(tmp_path: Path) -> None:
    result = run_cli(("admin", "db", "import", "--help"), _env(tmp_path, "a.db"), tmp_path)
    assert result.returncode == 0, result
    text = " ".join(result.stdout.split())
    for word in ("--file", "--merge", "built-in", "refresh tokens", "one transaction"):
        assert word in text


def test_postgresql_url_password_is_never_printed(tmp_path: Path, postgres_url: str) -> None:
    password = urlsplit(postgres_url).password
    assert password
    env = authly_env(tmp_path / "unused.db", AUTHLY_DATABASE_URL=postgres_url)
    results = [run_cli(("admin", "db", "migrate"), env, tmp_path)]
    assert run_cli(("admin", "db", "migrate"), _env(tmp_path, "a.db"), tmp_path).returncode == 0
    dumped = run_cli(("admin", "db", "export"), _env(tmp_path, "a.db"), tmp_path)
    results.append(run_cli(("admin", "db", "import"), env, tmp_path, stdin=dumped.stdout))
    assert [r.returncode for r in results] == [0, 0], results
    assert ":***@" in results[0].stdout
    bad = dict(env, AUTHLY_DATABASE_URL=postgres_url.rsplit("/", 1)[0] + "/no_such_database")
    results.append(run_cli(("admin", "db", "export"), bad, tmp_path))
    assert results[-1].returncode == 1
    _one_line(results[-1].stderr)
    for result in results:
        assert password not in result.stdout + result.stderr
