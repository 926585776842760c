"""Where the logs go and how they look: AUTHLY_LOG_LEVEL, AUTHLY_LOG_FORMAT, AUTHLY_LOG_FILE.

``configure_logging(settings)`` is called once per process that serves (``authly serve``
before it starts; each ``hypercorn ... authly.app`` worker on its first ASGI event). It
gives the root logger one handler: stderr as before, or, with AUTHLY_LOG_FILE, a file
opened for appending (an unopenable file is a ConfigError naming the variable). Records
are formatted as text (``time LEVEL logger: message``) or, with AUTHLY_LOG_FORMAT=json,
as one JSON object per line: ``time`` (ISO 8601, UTC), ``level``, ``logger``,
``message``, ``process`` and, when there is one, ``exception`` (the traceback text) —
so ``tail -f /var/log/authly.log | grep -i redis`` finds the same messages either way.
Both formats print only the formatted message, never a record's raw arguments, so what
the code masks (passwords in Redis and database URLs) stays masked in JSON too.

Log rotation: logrotate moves the file, then sends SIGHUP. ``reopen_on_sighup`` is a task
the app starts in its nursery (lifecycle.py) when AUTHLY_LOG_FILE is set; on SIGHUP it
reopens every ``ReopeningFileHandler`` on the root logger, so new lines go to a new file
at the configured path. With several worker processes (``authly serve --workers N``,
``hypercorn -w N``) SIGHUP goes to hypercorn's parent process, which restarts its workers
gracefully (its own meaning of SIGHUP); each new worker opens the file afresh.
"""

from __future__ import annotations

import json
import logging
import signal
from datetime import UTC, datetime

import trio

from authly.config import Settings
from authly.errors import ConfigError

log = logging.getLogger("authly")

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line (newlines inside are escaped)."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "process": record.process,
        }
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, default=str)


class ReopeningFileHandler(logging.FileHandler):
    """Appends to a file; ``reopen`` opens the path again (after logrotate moved it)."""

    def __init__(self, path: str, *, delay: bool = False) -> None:
        super().__init__(path, mode="a", encoding="utf-8", delay=delay)

    def reopen(self) -> None:
        """Open the path again; the old stream is closed once the new one is open (if
        opening fails, OSError is raised and logging goes on to the old file). A delayed
        handler that has not opened its file yet has nothing to reopen."""
        self.acquire()
        try:
            if self.stream is None:
                return
            new = self._open()
            old, self.stream = self.stream, new
            if old is not None:
                old.close()
        finally:
            self.release()


def make_handler(settings: Settings, *, lazy: bool = False) -> logging.Handler:
    """The handler AUTHLY_LOG_FILE / AUTHLY_LOG_FORMAT ask for; ``lazy``: the file is
    checked now but opened only when a record is written.

    Raises:
        ConfigError: naming AUTHLY_LOG_FILE when the file cannot be opened for appending.
    """
    handler: logging.Handler
    if settings.log_file is None:
        handler = logging.StreamHandler()  # stderr
    else:
        try:
            if lazy:
                open(settings.log_file, "a", encoding="utf-8").close()
            handler = ReopeningFileHandler(settings.log_file, delay=lazy)
        except OSError as exc:
            problem = exc.strerror or str(exc)
            raise ConfigError(
                "AUTHLY_LOG_FILE", f"cannot open {settings.log_file} for appending: {problem}"
            ) from None
    if settings.log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter(TEXT_FORMAT))
    return handler


def configure_logging(settings: Settings, *, lazy: bool = False) -> None:
    """Give the root logger its handler and level, unless it has a handler already
    (as ``logging.basicConfig`` does: a host application's configuration wins).
    ``lazy`` (for a parent process that only supervises workers and logs next to
    nothing): the log file is opened only if a record is written, so such a process
    does not keep a rotated file open.

    Raises:
        ConfigError: naming AUTHLY_LOG_FILE when the file cannot be opened for appending.
    """
    root = logging.getLogger()
    if root.handlers:
        return
    root.addHandler(make_handler(settings, lazy=lazy))
    root.setLevel(getattr(logging, settings.log_level, logging.INFO))


def reopen_log_files(logger: logging.Logger | None = None) -> list[str]:
    """Reopen the ReopeningFileHandlers of ``logger`` (default: the root logger); the
    paths reopened. A path that cannot be opened keeps its old file and is logged."""
    reopened = []
    for handler in (logger or logging.getLogger()).handlers:
        if isinstance(handler, ReopeningFileHandler):
            try:
                handler.reopen()
            except OSError as exc:
                log.error("cannot reopen log file %s: %s", handler.baseFilename, exc)
            else:
                reopened.append(handler.baseFilename)
    return reopened


async def reopen_on_sighup(*, task_status: trio.TaskStatus[trio.CancelScope]) -> None:
    """Until cancelled: on each SIGHUP, reopen the log files (logrotate's move-then-HUP).
    Must run in the main thread's trio run (where signals can be received)."""
    with trio.CancelScope() as scope, trio.open_signal_receiver(signal.SIGHUP) as signals:
        task_status.started(scope)
        async for _ in signals:
            for path in reopen_log_files():
                log.info("SIGHUP: reopened log file %s", path)
