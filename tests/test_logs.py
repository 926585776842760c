"""AUTHLY_LOG_FORMAT and AUTHLY_LOG_FILE in one process: parsing, the JSON formatter, the
file handler's reopen and the SIGHUP task (issue 11, item 8). Real servers writing to a
log file: tests/e2e/test_log_file.py."""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
import trio

from authly.config import Settings
from authly.core.logs import (
    JsonFormatter,
    ReopeningFileHandler,
    make_handler,
    reopen_log_files,
    reopen_on_sighup,
)
from authly.errors import ConfigError

# --- settings ----------------------------------------------------------------------------------


def test_defaults_are_text_on_stderr():
    settings = Settings.from_env({})
    assert (settings.log_format, settings.log_file) == ("text", None)
    handler = make_handler(settings)
    assert type(handler) is logging.StreamHandler
    assert handler.stream is sys.stderr  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("text", "value"), [("json", "json"), (" JSON ", "json"), ("Text", "text")]
)
def test_log_format_is_read(text: str, value: str):
    assert Settings.from_env({"AUTHLY_LOG_FORMAT": text}).log_format == value


def test_a_bad_log_format_names_the_variable():
    with pytest.raises(ConfigError, match=r"^AUTHLY_LOG_FORMAT: must be one of text, json$"):
        Settings.from_env({"AUTHLY_LOG_FORMAT": "xml"})


def test_log_file_is_made_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(tmp_path)
    settings = Settings.from_env({"AUTHLY_LOG_FILE": "authly.log"})
    assert settings.log_file == str(tmp_path / "authly.log")
    assert not (tmp_path / "authly.log").exists(), "reading the settings creates nothing"
    assert Settings().effective()["AUTHLY_LOG_FILE"] == "(unset)"
    assert settings.effective()["AUTHLY_LOG_FILE"] == str(tmp_path / "authly.log")


@pytest.mark.parametrize(
    ("where", "problem"),
    [
        ("missing/authly.log", "does not exist"),
        (".", "is a directory"),
        ("bad\x00name", "NUL"),
    ],
)
def test_an_unusable_log_file_names_the_variable(tmp_path: Path, where: str, problem: str):
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({"AUTHLY_LOG_FILE": str(tmp_path / where)})
    assert caught.value.variable == "AUTHLY_LOG_FILE"
    assert problem in caught.value.problem
    assert "\n" not in str(caught.value)


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere")
def test_a_read_only_directory_is_refused(tmp_path: Path):
    tmp_path.chmod(0o500)
    try:
        with pytest.raises(ConfigError, match="AUTHLY_LOG_FILE: cannot create"):
            Settings.from_env({"AUTHLY_LOG_FILE": str(tmp_path / "authly.log")})
    finally:
        tmp_path.chmod(0o700)


def test_a_file_that_cannot_be_opened_is_a_config_error(tmp_path: Path):
    # Valid when read, gone when opened (the directory was removed in between).
    directory = tmp_path / "logs"
    directory.mkdir()
    settings = Settings.from_env({"AUTHLY_LOG_FILE": str(directory / "authly.log")})
    directory.rmdir()
    for lazy in (False, True):
        with pytest.raises(ConfigError, match=r"^AUTHLY_LOG_FILE: cannot open .* for appending"):
            make_handler(settings, lazy=lazy)


# --- the JSON formatter ------------------------------------------------------------------------


def _record(message: str, *args: object, exc: bool = False) -> logging.LogRecord:
    exc_info = None
    if exc:
        try:
            raise ValueError("boom\nsecond line")
        except ValueError:
            exc_info = sys.exc_info()
    return logging.LogRecord("authly.test", logging.WARNING, __file__, 1, message, args, exc_info)


def test_json_lines_have_time_level_logger_message():
    line = JsonFormatter().format(_record("Redis connection failed, %s: %s", "falling", "x"))
    assert "\n" not in line
    entry = json.loads(line)
    assert entry["level"] == "WARNING"
    assert entry["logger"] == "authly.test"
    assert entry["message"] == "Redis connection failed, falling: x"
    assert entry["process"] == os.getpid()
    assert entry["time"].endswith("Z")
    parsed = datetime.fromisoformat(entry["time"].replace("Z", "+00:00"))
    assert parsed.utcoffset() is not None
    assert parsed.utcoffset().total_seconds() == 0  # type: ignore[union-attr]
    assert "exception" not in entry


def test_json_lines_carry_the_exception_on_one_line():
    line = JsonFormatter().format(_record("failed\nwith newline", exc=True))
    assert "\n" not in line
    entry = json.loads(line)
    assert entry["message"] == "failed\nwith newline"
    assert entry["exception"].startswith("Traceback")
    assert "ValueError: boom\nsecond line" in entry["exception"]


def test_json_shows_only_the_formatted_message():
    # What the code masks is masked in both formats: the formatter never dumps the
    # record's arguments or extra attributes.
    record = _record("connecting to %s", "redis://:***@h:6379/0")
    record.password = "s3cret"
    line = JsonFormatter().format(record)
    assert "s3cret" not in line
    assert json.loads(line)["message"] == "connecting to redis://:***@h:6379/0"


# --- reopening the file ------------------------------------------------------------------------


@pytest.fixture
def file_logger(tmp_path: Path) -> Iterator[tuple[logging.Logger, ReopeningFileHandler, Path]]:
    path = tmp_path / "authly.log"
    settings = Settings.from_env({"AUTHLY_LOG_FILE": str(path), "AUTHLY_LOG_FORMAT": "json"})
    handler = make_handler(settings)
    assert isinstance(handler, ReopeningFileHandler)
    logger = logging.Logger("authly.test-reopen")
    logger.addHandler(handler)
    try:
        yield logger, handler, path
    finally:
        handler.close()


def _messages(path: Path) -> list[str]:
    return [json.loads(line)["message"] for line in path.read_text().splitlines()]


def test_reopen_starts_a_new_file_after_a_move(file_logger):
    logger, _, path = file_logger
    logger.warning("before")
    path.rename(path.with_suffix(".log.1"))
    logger.warning("moved, not reopened yet")
    assert not path.exists()
    assert reopen_log_files(logger) == [str(path)]
    logger.warning("after")
    assert _messages(path.with_suffix(".log.1")) == ["before", "moved, not reopened yet"]
    assert _messages(path) == ["after"]


def test_a_failed_reopen_keeps_the_old_file(file_logger, tmp_path: Path):
    logger, _, path = file_logger
    moved = tmp_path / "old.log"
    path.rename(moved)
    path.mkdir()  # the path is now a directory: it cannot be opened as the log
    assert reopen_log_files(logger) == []
    logger.warning("still logging")
    assert _messages(moved) == ["still logging"]


def test_a_lazy_handler_opens_the_file_only_when_it_logs(tmp_path: Path):
    path = tmp_path / "authly.log"
    handler = make_handler(Settings(log_file=str(path)), lazy=True)
    assert isinstance(handler, ReopeningFileHandler)
    try:
        assert path.exists()  # checked (created empty) ...
        assert handler.stream is None  # ... but not kept open
        handler.reopen()
        assert handler.stream is None
    finally:
        handler.close()


async def test_sighup_reopens_the_root_loggers_files(file_logger):
    logger, handler, path = file_logger
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        async with trio.open_nursery() as nursery:
            scope = await nursery.start(reopen_on_sighup)
            logger.warning("before")
            path.rename(path.with_suffix(".log.1"))
            os.kill(os.getpid(), signal.SIGHUP)
            with trio.fail_after(5):
                while not path.exists():
                    await trio.sleep(0.01)
            logger.warning("after")
            scope.cancel()
    finally:
        root.removeHandler(handler)
    assert _messages(path.with_suffix(".log.1")) == ["before"]
    assert _messages(path)[-1] == "after"
