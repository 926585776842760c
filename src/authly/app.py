"""The application factory.

``create_app(settings)`` builds a fresh app (tests vary settings per app). For
``hypercorn -k trio authly.app`` the module attribute ``app`` (an EnvApp) reads the
process environment at import, the edge where such a worker gets its settings.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

import sniffio
from quart_trio import QuartTrio

from authly.config import Settings
from authly.errors import ConfigError
from authly.metrics import Metrics
from authly.web import auth, health, oauth, oidc, users
from authly.web import metrics as metrics_web
from authly.web.render import register_error_handlers

TRIO_REQUIRED = (
    "authly: Authly runs on Trio; start hypercorn with the trio worker: "
    "hypercorn -k trio authly.app"
)


class AuthlyApp(QuartTrio):
    """QuartTrio that refuses, in one line, to run under an asyncio worker."""

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        try:
            library = sniffio.current_async_library()
        except sniffio.AsyncLibraryNotFoundError:
            library = "unknown"
        if library != "trio":
            print(TRIO_REQUIRED, file=sys.stderr, flush=True)
            os._exit(2)
        await super().__call__(scope, receive, send)


def create_app(settings: Settings | None = None) -> AuthlyApp:
    """Build the app; with no settings, read them from ``os.environ``.

    Raises:
        ConfigError: when a setting read from the environment is bad.
    """
    if settings is None:
        settings = Settings.from_env(os.environ)
    from authly import lifecycle

    app = AuthlyApp("authly")
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.config["BACKGROUND_TASK_SHUTDOWN_TIMEOUT"] = 1
    app.config["JSON_SORT_KEYS"] = False
    metrics = Metrics()
    for blueprint in (auth.bp, oauth.bp, users.bp, oidc.bp, health.bp, metrics_web.bp):
        app.register_blueprint(blueprint)
    register_error_handlers(app)
    metrics_web.install_request_metrics(app, metrics)
    lifecycle.install(app, settings, metrics)
    return app


def configure_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level, logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


class EnvApp:
    """The ASGI app for ``hypercorn -k trio authly.app``.

    Settings are read from the environment when the module is imported, so a bad value
    stops the worker at once with one line (exit status 2); the real app is built on
    the first ASGI event (lifespan start-up), in the worker that serves it.
    """

    def __init__(self) -> None:
        try:
            self._settings = Settings.from_env(os.environ)
        except ConfigError as exc:
            print(f"authly: configuration error: {exc}", file=sys.stderr, flush=True)
            raise SystemExit(2) from None
        self._app: AuthlyApp | None = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if self._app is None:
            configure_logging(self._settings.log_level)
            self._app = create_app(self._settings)
        await self._app(scope, receive, send)


app = EnvApp()
