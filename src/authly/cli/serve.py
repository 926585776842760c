"""`authly serve`: hypercorn's trio worker, run programmatically."""

from __future__ import annotations

import logging
import os
import signal
import socket
import sys

import click
import trio
from hypercorn.config import Config
from hypercorn.run import run
from hypercorn.trio import serve as hypercorn_serve

from authly.cli.common import config_failure, load_settings
from authly.config import Settings
from authly.errors import ConfigError
from authly.factory import configure_logging, create_app

log = logging.getLogger("authly")

GRACEFUL_TIMEOUT = 1.0
# An idle keep-alive connection is closed after this many seconds (hypercorn's default,
# made explicit; configs/hypercorn.toml sets the same).
KEEP_ALIVE_TIMEOUT = 5.0
# A connection whose peer sends nothing for this many seconds is closed, request in
# progress or not: a backstop for half-sent requests and any path that skips the close.
READ_TIMEOUT = 30


def hypercorn_config(settings: Settings, workers: int) -> Config:
    config = Config()
    host = f"[{settings.host}]" if ":" in settings.host else settings.host
    config.bind = [f"{host}:{settings.port}"]
    config.worker_class = "trio"
    config.workers = workers
    config.graceful_timeout = GRACEFUL_TIMEOUT
    config.keep_alive_timeout = KEEP_ALIVE_TIMEOUT
    config.read_timeout = READ_TIMEOUT
    config.errorlog = None  # hypercorn logs through the root logger configured above
    config.loglevel = settings.log_level
    return config


async def _serve_one(settings: Settings, config: Config) -> None:
    async def wait_for_signal() -> None:
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async for signum in signals:
                log.info("received %s, shutting down", signal.Signals(signum).name)
                return

    await hypercorn_serve(create_app(settings), config, shutdown_trigger=wait_for_signal)


def check_bind(settings: Settings) -> None:
    """Fail with one line, before anything is opened, if the address cannot be bound."""
    family = socket.AF_INET6 if ":" in settings.host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((settings.host, settings.port))
        except OSError as exc:
            click.echo(
                f"authly: cannot listen on {settings.host}:{settings.port}: {exc.strerror}",
                err=True,
            )
            sys.exit(1)


@click.command()
@click.option("--host", default=None, help="Address to bind (default AUTHLY_HOST or 127.0.0.1).")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=None,
    help="Port to bind (default AUTHLY_PORT or 8000).",
)
@click.option(
    "--workers", type=click.IntRange(1, 64), default=1, show_default=True, help="Worker processes."
)
def serve(host: str | None, port: int | None, workers: int) -> None:
    """Serve Authly over HTTP until SIGINT or SIGTERM; SIGHUP reopens AUTHLY_LOG_FILE."""
    settings = load_settings(host=host, port=port)
    try:
        # stderr, or AUTHLY_LOG_FILE (reopened on SIGHUP: core/logs.py). With workers,
        # this process only supervises them (hypercorn restarts them on SIGHUP, and
        # each opens the file afresh): it opens the file only if it ever logs.
        configure_logging(settings, lazy=workers > 1)
    except ConfigError as exc:
        config_failure(exc)
    config = hypercorn_config(settings, workers)
    check_bind(settings)
    if workers == 1:
        trio.run(_serve_one, settings, config)
        return
    # Worker processes are spawned and import authly.app:app, which reads the
    # environment; hand them the flags through it.
    os.environ["AUTHLY_HOST"] = settings.host
    os.environ["AUTHLY_PORT"] = str(settings.port)
    # AUTHLY_ISSUER is passed on only when set: each worker computes the same default
    # and the store's recorded issuer then applies to all of them alike.
    config.application_path = "authly.app:app"
    sys.exit(run(config))
